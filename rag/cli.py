"""`rag` command line: ingest, ask, repl, sources. Thin: parsing, then one engine call, then output."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from dataclasses import asdict
from typing import TextIO

from rag.errors import BadQuestion, ConfigError, RagError
from rag.textsafe import replace_surrogates, safe_text

EXIT_PIPE = 141  # what a shell reports for a tool stopped by a closed pipe (128 + SIGPIPE)


def _parser() -> argparse.ArgumentParser:
    from rag.helptext import RAG_EXIT, epilog, make_parser, wrap

    def command(name: str, summary: str, description: str, *groups: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=wrap(description), epilog=epilog(RAG_EXIT, *groups),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = make_parser(
        "rag", "Ask questions about a folder of documents; answers cite their sources, and say so when "
        "the documents don't hold the answer. Without a command, opens the REPL.",
        RAG_EXIT, "documents", "answering", "logging",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    ing = command("ingest", "build or update the index from the documents folder",
                  "Build or update the index from RAG_SEEDS_DIR into RAG_INDEX_DIR. Incremental: only new "
                  "and changed files are embedded, removed ones are dropped. The first run for a model "
                  "exports it to ONNX into RAG_MODEL_CACHE; later runs and other index folders reuse that "
                  "export (the summary line says which was used).", "documents", "logging")
    ing.add_argument("--json", action="store_true",
                     help="print the report as one JSON object (added, updated, removed, unchanged, "
                          "chunks_embedded, seconds, ...) instead of the summary")
    ing.add_argument("--rebuild", action="store_true",
                     help="re-embed every document (after a damaged index, or to start clean)")
    ask = command("ask", "answer one question",
                  "Answer one question from the indexed documents, with numbered citations. If the "
                  "documents changed since the last ingest (or there is no index yet), the index is "
                  "updated first.", "documents", "answering", "logging")
    ask.add_argument("question", nargs="+", metavar="QUESTION",
                     help="the question; several words need no quotes (quote it if it holds shell characters)")
    ask.add_argument("--json", action="store_true",
                     help="print the answer as JSON: question, answer, abstained, backend, notes, citations, timings_ms")
    command("repl", "ask questions interactively (the default)",
            "Ask questions one after another, with line editing and history on a terminal. Commands: "
            ":sources, :docs, :new, :help, :quit. Reads questions line by line when stdin is piped.",
            "documents", "answering", "logging")
    src = command("sources", "list the indexed documents",
                  "List the indexed documents with their chunk counts, languages, dates and titles.",
                  "documents", "logging")
    src.add_argument("--json", action="store_true", help="print a JSON list of {source, title, date, language, chunks}")
    return p


class SafeWriter:
    """A text stream that strips terminal escapes and control characters from everything written.

    Answers quote documents, and documents (or an LLM) may hold escape sequences that clear the
    screen or retitle the window; every byte the CLI prints to stdout goes through here.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with _output_errors():
            return self._stream.write(safe_text(text))

    def flush(self) -> None:
        with _output_errors():
            self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class OutputFailed(Exception):
    """Standard output cannot be written (a full disk, a closed descriptor): not a bug to report."""


@contextlib.contextmanager
def _output_errors():
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputFailed(err.strerror or str(err)) from None


def _finite(value):
    """The value with NaN and infinities (not JSON) replaced by null, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value, indent: int | None = None) -> str:
    """Always valid JSON (allow_nan=False after replacing non-finite numbers)."""
    return json.dumps(_finite(value), ensure_ascii=False, indent=indent, allow_nan=False)


def _error(err: BaseException | str) -> None:
    if sys.stderr is not None:
        print(f"error: {safe_text(str(err))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; every outcome is a message and an exit code from the README's table."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):  # replaced streams (tests) may not support it
            stream.reconfigure(errors="replace")  # invalid UTF-8 in, unencodable text out: never a crash
    if sys.stdin is None:  # started with stdin closed (`rag repl <&-`): no input, as from /dev/null
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    if sys.stdout is None:  # started with stdout closed (`rag sources >&-`)
        _error(OutputFailed("cannot write the output: standard output is closed"))
        return 1
    out = SafeWriter(sys.stdout)
    saved, sys.stdout = sys.stdout, out  # argparse's --help and --version print there too
    try:
        try:
            code = _run(argv, out)
        except SystemExit:  # --help, --version, a usage error: their text must reach the reader too
            out.flush()
            raise
        out.flush()  # a full disk shows here, not as an ignored exception at exit
        return code
    except OutputFailed as err:
        _error(f"cannot write the output ({err})")
        return 1
    except BrokenPipeError:
        # The reader went away (`rag sources | head -1`): stop quietly, like other Unix tools.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except KeyboardInterrupt:
        return 130
    except (BadQuestion, ConfigError) as err:
        _error(err)
        return 2
    except RagError as err:
        _error(err)
        return 1
    except MemoryError:
        print("error: out of memory; lower RAG_MAX_FILE_MB or index fewer files at once", file=sys.stderr)
        return 1
    except Exception as err:  # a bug: still one line, the traceback only on request
        logging.getLogger("rag").debug("unexpected error", exc_info=True)
        print(f"error: unexpected {type(err).__name__}: {safe_text(str(err))[:500]} "
              "(set RAG_LOG_LEVEL=DEBUG to see where; please report it)", file=sys.stderr)
        return 1
    finally:
        sys.stdout = saved


def _run(argv: list[str] | None, out: TextIO) -> int:
    from rag.startup import startup

    args = _parser().parse_args(argv)
    settings = startup()
    if settings is None:
        return 2
    from rag.engine import build_engine

    engine = build_engine(settings)
    if args.command == "ingest":
        from rag.progress import Progress

        with Progress(None, "ingest"):  # lines off a terminal, also for phases that have no count
            report = engine.ingest(rebuild=args.rebuild, progress=True)
        if args.json:
            r = report.to_json()
            print(dumps({k: r[k] for k in ("added", "updated", "removed", "unchanged", "chunks_embedded", "seconds")}
                        | {k: r[k] for k in ("chunks_total", "skipped", "rebuilt", "model_export", "notes",
                                             "timings")}), file=out)
        else:
            if report.rebuilt:
                print(f"full rebuild: {report.rebuilt}", file=out)
            for s in report.skipped:
                print(f"skipped {safe_text(s.source)}: {safe_text(s.reason)}", file=sys.stderr)
            for note in report.notes:
                print(f"note: {note}", file=sys.stderr)
            print(f"{report.added} added, {report.updated} updated, {report.removed} removed, "
                  f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded "
                  f"({report.chunks_total} in the index) in {report.seconds:.1f} s", file=out)
            if report.model_export:
                print(f"model: {report.model_export}", file=out)
        return 0
    if args.command == "ask":
        return _ask(engine, replace_surrogates(" ".join(args.question)), args.json, out)
    if args.command == "sources":
        docs = engine.sources()
        if args.json:
            print(dumps([asdict(d) for d in docs], indent=1), file=out)
        else:
            for d in docs:
                print(f"{d.source}  {d.chunks:>3} chunks  [{d.language}]  {d.date or '':10}  {d.title}", file=out)
        return 0
    from rag.repl import run_repl

    return run_repl(engine, out=out)


def _ask(engine, question: str, as_json: bool, out: TextIO) -> int:
    if as_json:
        print(dumps(engine.ask(question).to_json(), indent=1), file=out)
        return 0
    from rag.records import Answer
    from rag.render import render_footer

    answer = None
    for piece in engine.ask_stream(question):  # LLM answers print as they arrive
        if isinstance(piece, Answer):
            answer = piece
        else:
            print(piece, end="", flush=True, file=out)
    print(file=out)
    print(render_footer(answer), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
