"""`python -m evals run|tune-fusion|bench|scale`: thin argument parsing over the runner."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from rag.helptext import EVALS_EXIT, epilog, make_parser, wrap

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=wrap(description),
                              epilog=epilog(EVALS_EXIT, "documents", "answering", "logging"),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = make_parser("python -m evals", "Measure retrieval, answers, citations and abstention of the product's "
                    "own engine, on a QA JSONL file or a BEIR folder.", EVALS_EXIT, "documents", "answering", "logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = command("run", "evaluate a QA JSONL file or a BEIR folder",
                  "Run every question of a dataset through the engine and print a summary table. A QA "
                  "JSONL file is answered from RAG_SEEDS_DIR (or --seeds); a BEIR folder's corpus is "
                  "indexed once and cached under .rag_cache/. Progress goes to stderr: a bar on a "
                  "terminal, else a line every RAG_PROGRESS_SECONDS (15 s by default).")
    run.add_argument("--dataset", required=True, type=Path, metavar="PATH",
                     help="a QA JSONL file (like evals/seeds_qa.jsonl) or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    run.add_argument("--out", type=Path, metavar="JSON",
                     help="report path; default reports/<dataset>-<split>[-first<N>].json, so runs on other "
                          "splits or limits never overwrite each other (with --compare: one file per configuration)")
    run.add_argument("--markdown", type=Path, metavar="MD", help="also write the summary table here")
    run.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    run.add_argument("--split", help="QA: dev, test or all (default all); BEIR: qrels split (default test)")
    run.add_argument("--seeds", type=Path, metavar="DIR", help="QA: documents folder to index instead of RAG_SEEDS_DIR")
    run.add_argument("--compare", metavar="NAMES",
                     help="comma-separated configurations run on the same index: default, hybrid, hybrid-rrf, "
                          "dense, bm25, ngram, lexical, no-abstain")
    run.add_argument("--chart", type=Path, metavar="PNG", help="chart path for --compare (default next to --out)")
    run.add_argument("--store", metavar="files|URL",
                     help="where the index lives: 'files' (a snapshot folder) or a postgresql:// URL; "
                          "default RAG_STORE_URL (files when it is empty)")
    tune = command("tune-fusion", "grid-search the fusion (cc weights, or RRF weights and k) on a BEIR train split",
                   "Try convex-combination weights (the default fusion, RAG_FUSION=cc) and RRF weights and k "
                   "on a BEIR split (train by default, so test stays unseen) and print nDCG@10 per candidate.")
    tune.add_argument("--dataset", required=True, type=Path, metavar="PATH", help="a BEIR folder")
    tune.add_argument("--split", default="train", help="qrels split to tune on (default train)")
    bench = command("bench", "speed benchmark against a plain llama-index pipeline",
                    "Build this pipeline and a plain llama-index pipeline in the same run, each measurement in "
                    "its own process: cold start, warm latency per stage, memory, ingest throughput against "
                    "the arithmetic floor. About 25 minutes (--quick: a 500-document slice).")
    bench.add_argument("--out", type=Path, default=Path("reports/bench.json"), metavar="JSON",
                       help="results file (default reports/bench.json)")
    bench.add_argument("--quick", action="store_true", help="smaller corpus slice and fewer runs")
    bench.add_argument("--dataset", type=Path, metavar="PATH", default=None,
                       help="BEIR folder for the ingest throughput part (default ../shared/benchmarks/beir-scifact)")
    scale = command("scale", "the stores at 100,000 and 1,000,000 synthetic chunks",
                    "Load a synthetic corpus (embedding-like vectors, Zipfian text) into FAISS flat, the FAISS "
                    "scale path (HNSW) and PostgreSQL (RAG_STORE_URL, else a local server it starts), then "
                    "measure load time, disk size, peak memory, question p50/p95 on the full path, dense "
                    "recall@10 against exact search and a one-source update. Results accumulate in --out; "
                    "a million chunks take about an hour per store on 2 cores.")
    scale.add_argument("--sizes", default="100000,1000000", help="comma-separated chunk counts (default 100000,1000000)")
    scale.add_argument("--stores", default="faiss-flat,faiss-hnsw,postgres",
                       help="comma-separated: faiss-flat, faiss-hnsw, postgres (default all)")
    scale.add_argument("--questions", type=int, default=200, help="questions per store and size (default 200)")
    scale.add_argument("--out", type=Path, default=Path("reports/scale.json"), metavar="JSON",
                       help="results file, updated per (store, size) (default reports/scale.json; chart beside it)")
    scale.add_argument("--report", action="store_true", help="only print the table and draw the chart from --out")
    scale.add_argument("--keep", action="store_true",
                       help="keep the loaded indexes (.rag_cache/scale/, PostgreSQL schema scale_<N>) for inspection")
    return p


def default_report_path(dataset: Path, beir: bool, split: str | None, limit: int | None) -> Path:
    """reports/<dataset>-<split>[-first<N>].json: runs over other splits or limits keep their own file."""
    split = split or ("test" if beir else "all")
    name = f"{Path(str(dataset).rstrip('/')).stem}-{split}" + (f"-first{limit}" if limit else "")
    return Path("reports") / f"{name}.json"


def _with_suffix(path: Path, name: str) -> Path:
    return path.with_name(f"{path.stem}-{name}{path.suffix}")


def main(argv: list[str] | None = None) -> int:
    from rag.errors import RagError
    from rag.startup import startup

    args = _parser().parse_args(argv)
    settings = startup()
    if settings is None:
        return 2
    try:
        if args.command == "bench":
            from evals.bench import SCIFACT, run_bench

            return run_bench(settings, args.out, quick=args.quick, dataset=args.dataset or SCIFACT)
        if args.command == "scale":
            from evals.scale import STORES, run_scale

            stores = [x.strip() for x in args.stores.split(",") if x.strip()]
            if set(stores) - set(STORES):
                raise ValueError(f"--stores: unknown {', '.join(sorted(set(stores) - set(STORES)))}; known: {', '.join(STORES)}")
            sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
            return run_scale(settings, sizes, stores, args.questions, args.out, args.report, args.keep)
        if args.command == "tune-fusion":
            from evals.tune import tune_fusion

            return tune_fusion(settings, args.dataset, args.split)
        return _run(settings, args)
    except (RagError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(settings, args) -> int:
    from evals.datasets import is_beir, load_beir, load_qa
    from evals.report import draw_chart, kind_table, markdown_table, write_json
    from evals.runner import cache_schema, index_dir_for_seeds, run_beir, run_qa

    names = args.compare.split(",") if args.compare else ["default"]
    dataset = str(args.dataset)
    if args.store:
        if args.store != "files" and not args.store.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"--store {args.store!r} must be 'files' or a postgresql:// URL")
        settings = settings.with_(store_url="" if args.store == "files" else args.store)
    reports = []
    if is_beir(args.dataset):
        beir = load_beir(args.dataset, args.split or "test")
        for name in names:
            reports.append(run_beir(settings, beir, name.strip(), dataset, args.limit))
    else:
        if args.seeds:
            cache = index_dir_for_seeds(args.seeds)
            settings = settings.with_(seeds_dir=args.seeds, index_dir=cache, pg_schema=cache_schema(cache))
        items = load_qa(args.dataset, args.split)[: args.limit] if args.limit else load_qa(args.dataset, args.split)
        if not items:
            raise ValueError(f"no questions in {dataset}" + (f" for split {args.split!r}" if args.split else ""))
        for name in names:
            reports.append(run_qa(settings, items, name.strip(), dataset))
    table = markdown_table(reports)
    print(table)
    if len(reports) == 1 and reports[0]["by_kind"]:
        print("\nBy kind:\n" + kind_table(reports[0]))
    out = args.out or default_report_path(args.dataset, is_beir(args.dataset), args.split, args.limit)
    for r in reports:
        path = _with_suffix(out, r["config"]["name"]) if len(reports) > 1 else out
        write_json(r, path)
        print(f"report: {path}", file=sys.stderr)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        extra = "\n\n" + kind_table(reports[0]) if len(reports) == 1 and reports[0]["by_kind"] else ""
        args.markdown.write_text(table + extra + "\n", encoding="utf-8")
    if len(reports) > 1:
        chart = args.chart or out.with_suffix(".png")
        try:
            draw_chart(reports, chart)
            print(f"chart: {chart}", file=sys.stderr)
        except ImportError:  # matplotlib is the optional `eval` extra; the reports are written anyway
            print("chart skipped: matplotlib is not installed (pip install 'seedrag[eval]')", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
