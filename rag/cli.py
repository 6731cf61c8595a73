"""`rag` command line: ingest, ask, repl, sources. Thin: parsing, then one engine call, then output."""

from __future__ import annotations

import argparse
import json
import sys

from rag.errors import BadQuestion, RagError


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


def main(argv: list[str] | None = None) -> int:
    from rag.startup import startup

    args = _parser().parse_args(argv)
    settings = startup()
    if settings is None:
        return 2
    from rag.engine import build_engine

    engine = build_engine(settings)
    try:
        if args.command == "ingest":
            from rag.progress import Progress

            with Progress(None, "ingest"):  # lines off a terminal, also for phases that have no count
                report = engine.ingest(rebuild=args.rebuild, progress=True)
            if args.json:
                r = report.to_json()
                print(json.dumps({k: r[k] for k in ("added", "updated", "removed", "unchanged", "chunks_embedded", "seconds")}
                                 | {"chunks_total": r["chunks_total"], "skipped": r["skipped"], "rebuilt": r["rebuilt"],
                                    "model_export": r["model_export"]}))
            else:
                if report.rebuilt:
                    print(f"full rebuild: {report.rebuilt}")
                for s in report.skipped:
                    print(f"skipped {s['source']}: {s['reason']}", file=sys.stderr)
                print(f"{report.added} added, {report.updated} updated, {report.removed} removed, "
                      f"{report.unchanged} unchanged; {report.chunks_embedded} chunks embedded "
                      f"({report.chunks_total} in the index) in {report.seconds:.1f} s")
                if report.model_export:
                    print(f"model: {report.model_export}")
            return 0
        if args.command == "ask":
            return _ask(engine, " ".join(args.question), args.json)
        if args.command == "sources":
            docs = engine.sources()
            if args.json:
                print(json.dumps(docs, ensure_ascii=False, indent=1))
            else:
                for d in docs:
                    print(f"{d['source']}  {d['chunks']:>3} chunks  [{d['language']}]  {d.get('date') or '':10}  {d['title']}")
            return 0
        from rag.repl import run_repl

        return run_repl(engine)
    except BadQuestion as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RagError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _ask(engine, question: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps(engine.ask(question).to_json(), ensure_ascii=False, indent=1))
        return 0
    from rag.records import Answer
    from rag.render import render_footer

    answer = None
    for piece in engine.ask_stream(question):  # LLM answers print as they arrive
        if isinstance(piece, Answer):
            answer = piece
        else:
            print(piece, end="", flush=True)
    print()
    print(render_footer(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
