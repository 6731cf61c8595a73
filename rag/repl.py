"""The interactive loop: line editing and history when on a terminal, plain lines when piped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from rag.engine import Engine
from rag.errors import BadQuestion, RagError
from rag.records import Answer
from rag.render import render_footer, render_sources

HELP = """Ask a question about the documents, or:
  :sources   full snippets of the last answer's sources
  :docs      the indexed documents
  :new       forget the conversation so far
  :help      this text
  :quit      leave (Ctrl-D works too)"""
HISTORY_FILE = Path.home() / ".rag_history"


def _enable_line_editing() -> None:
    try:
        import readline
    except ImportError:  # not on every platform; plain input() still works
        return
    try:
        readline.read_history_file(HISTORY_FILE)
    except OSError:
        pass
    import atexit

    def save() -> None:
        try:
            readline.write_history_file(HISTORY_FILE)
        except OSError:
            pass

    atexit.register(save)


def run_repl(engine: Engine, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    interactive = stdin.isatty() and out.isatty()
    if interactive:
        _enable_line_editing()
        print(f"Ask about the documents ({engine.backend} answers). :help for commands.", file=out)
    last: Answer | None = None
    history: list[tuple[str, str]] = []
    while True:
        try:
            line = input("? ") if interactive else stdin.readline()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return 0
        if not interactive and line == "":
            return 0
        line = line.strip()
        if not line:
            continue
        if line in (":quit", ":q", ":exit"):
            return 0
        if line == ":help":
            print(HELP, file=out)
            continue
        if line == ":sources":
            print(render_sources(last, full=True) if last else "(no answer yet)", file=out)
            continue
        if line == ":docs":
            for d in engine.sources():
                print(f"{d['source']}  {d['chunks']} chunks  [{d['language']}]  {d['title']}", file=out)
            continue
        if line == ":new":
            history.clear()
            continue
        try:
            for piece in engine.ask_stream(line, history[-3:]):
                if isinstance(piece, Answer):
                    last = piece
                else:
                    print(piece, end="", file=out, flush=True)
        except BadQuestion as err:
            print(f"error: {err}", file=out)
            continue
        except RagError as err:
            print(f"error: {err}", file=out)
            continue
        print(file=out)
        if last is not None:
            print(render_footer(last), file=out, flush=True)
            if not last.abstained:
                history.append((line, last.text))
