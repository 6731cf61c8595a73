"""The interactive loop: line editing and history when on a terminal, plain lines when piped."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import TextIO

from rag.engine import Engine
from rag.errors import RagError
from rag.records import Answer
from rag.render import render_footer, render_sources
from rag.textsafe import replace_surrogates, safe_text

log = logging.getLogger(__name__)

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
    """Answer lines until EOF or :quit. A bad line (or a failing answer) prints an error and the loop goes on."""
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
        except UnicodeDecodeError:  # a stdin that was not reconfigured to replace bad bytes
            print("error: that line was not valid UTF-8 text", file=out)
            continue
        if not interactive and line == "":
            return 0
        line = replace_surrogates(line).strip()
        if not line:
            continue
        if line in (":quit", ":q", ":exit"):
            return 0
        try:
            last = _handle(engine, line, last, history, out)
        except KeyboardInterrupt:  # Ctrl-C stops this answer, not the session
            print("\n(interrupted)", file=out)
        except RagError as err:
            print(f"error: {safe_text(str(err))}", file=out)
        except BrokenPipeError:
            raise
        except Exception as err:  # a bug must not end the session: say so and go on
            log.debug("unexpected error", exc_info=True)
            print(f"error: unexpected {type(err).__name__}: {safe_text(str(err))[:300]}", file=out)


def _handle(engine: Engine, line: str, last: Answer | None, history: list[tuple[str, str]],
            out: TextIO) -> Answer | None:
    """One line of input: a command or a question; returns the last answer."""
    if line == ":help":
        print(HELP, file=out)
        return last
    if line == ":sources":
        print(render_sources(last, full=True) if last else "(no answer yet)", file=out)
        return last
    if line == ":docs":
        for d in engine.sources():
            print(f"{d.source}  {d.chunks} chunks  [{d.language}]  {d.title}", file=out)
        return last
    if line == ":new":
        history.clear()
        return last
    if re.fullmatch(r":\w+", line):  # a mistyped command is not a question
        print(f"unknown command {line}; :help lists the commands", file=out)
        return last
    answer = None
    for piece in engine.ask_stream(line, history[-3:]):
        if isinstance(piece, Answer):
            answer = piece
        else:
            print(piece, end="", file=out, flush=True)
    print(file=out)
    if answer is None:
        return last
    print(render_footer(answer), file=out, flush=True)
    if not answer.abstained:
        history.append((line, answer.text))
    return answer
