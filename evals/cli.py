"""`python -m evals run|tune-fusion|bench`: thin argument parsing over the runner."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evals", description="Measure retrieval, answers, citations and abstention.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="evaluate a QA JSONL file or a BEIR folder")
    run.add_argument("--dataset", required=True, type=Path)
    run.add_argument("--out", type=Path, help="report JSON (with --compare: one file per configuration)")
    run.add_argument("--markdown", type=Path, help="also write the summary table here")
    run.add_argument("--limit", type=int, help="only the first N questions")
    run.add_argument("--split", help="QA: dev, test or all (default all); BEIR: qrels split (default test)")
    run.add_argument("--seeds", type=Path, help="QA: documents folder to index instead of RAG_SEEDS_DIR")
    run.add_argument("--compare", help="comma-separated configurations, e.g. dense,bm25,hybrid")
    run.add_argument("--chart", type=Path, help="PNG chart path for --compare (default next to --out)")
    tune = sub.add_parser("tune-fusion", help="grid-search RRF weights on a BEIR train split")
    tune.add_argument("--dataset", required=True, type=Path)
    tune.add_argument("--split", default="train")
    bench = sub.add_parser("bench", help="speed benchmark against a plain llama-index pipeline")
    bench.add_argument("--out", type=Path, default=Path("reports/bench.json"))
    bench.add_argument("--quick", action="store_true", help="smaller corpus slice and fewer runs")
    return p


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
            from evals.bench import run_bench

            return run_bench(settings, args.out, quick=args.quick)
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
    from evals.runner import index_dir_for_seeds, run_beir, run_qa

    names = args.compare.split(",") if args.compare else ["default"]
    dataset = str(args.dataset)
    reports = []
    if is_beir(args.dataset):
        beir = load_beir(args.dataset, args.split or "test")
        for name in names:
            reports.append(run_beir(settings, beir, name.strip(), dataset, args.limit))
    else:
        if args.seeds:
            settings = settings.with_(seeds_dir=args.seeds, index_dir=index_dir_for_seeds(args.seeds))
        items = load_qa(args.dataset, args.split)[: args.limit] if args.limit else load_qa(args.dataset, args.split)
        if not items:
            raise ValueError(f"no questions in {dataset}" + (f" for split {args.split!r}" if args.split else ""))
        for name in names:
            reports.append(run_qa(settings, items, name.strip(), dataset))
    table = markdown_table(reports)
    print(table)
    if len(reports) == 1 and reports[0]["by_kind"]:
        print("\nBy kind:\n" + kind_table(reports[0]))
    out = args.out or Path("reports") / (Path(dataset.rstrip("/")).stem + ".json")
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
        draw_chart(reports, chart)
        print(f"chart: {chart}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
