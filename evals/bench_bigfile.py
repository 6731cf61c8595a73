"""Big-file benchmark: one large text file through `rag ingest`, time per stage and peak memory.

    python -m evals.bench_bigfile --mb 50          # the README's row (about an hour on 2 cores)
    python -m evals.bench_bigfile --mb 5 --baseline-mb 0.5 --chunk-only-mb 50   # 50 MB read and chunked only

The file is SciFact abstracts (title and text, a blank line between them) repeated until it has
the requested size, so it reads like real prose. Each size runs in its own `rag ingest --json`
child process with a fresh index, so its peak RSS (from wait4) is that ingest's alone. The
baseline is the same pipeline on a file a tenth of the size, in the same run: if time and
memory grow in proportion to the text (and chunking keeps the same share), there is no
super-linear step left. The report's stage timings split the time into reading (read, clean,
language), chunking, embedding (chunks and sentences), indexing (BM25, FAISS) and writing; the
child's RSS is sampled twice a second to say which stage holds the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "benchmarks" / "beir-scifact" / "corpus.jsonl"


def make_file(path: Path, mb: float, corpus: Path = SCIFACT) -> int:
    """Write `mb` megabytes (2**20 bytes) of prose to `path`; returns the byte count."""
    target = int(mb * 2**20)
    paragraphs = []
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            paragraphs.append(f"{doc.get('title', '')}\n\n{doc.get('text', '')}".strip())
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            for p in paragraphs:
                data = p + "\n\n"
                out.write(data)
                written += len(data.encode("utf-8"))
                if written >= target:
                    break
    return written


STAGES = ("read", "chunk", "load model", "lexical", "embed", "faiss", "write")


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ingest_once(mb: float, work: Path, corpus: Path = SCIFACT) -> dict:
    seeds, index = work / f"seeds-{mb:g}", work / f"index-{mb:g}"
    seeds.mkdir(parents=True)
    size = make_file(seeds / "big.txt", mb, corpus)
    env = {**os.environ, "RAG_SEEDS_DIR": str(seeds), "RAG_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1",
           "RAG_MAX_FILE_MB": str(max(50.0, mb * 2))}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag", "ingest", "--json"], stdout=subprocess.PIPE,
                            env=env, cwd=work)
    samples: list[tuple[float, float]] = []  # (seconds since start, RSS MiB), to say which stage peaks

    def sample() -> None:
        while proc.poll() is None:
            samples.append((time.perf_counter() - start, _rss_mib(proc.pid)))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rag ingest failed for {mb:g} MB (exit {os.waitstatus_to_exitcode(status)})")
    report = json.loads(out)
    t = report["timings"]
    total = sum(t.values())
    # Stages run in STAGES order after start-up (reading and chunking interleave: counted together).
    startup = max(0.0, wall - report["seconds"])
    bounds, at = [], startup
    for stage in ("read+chunk",) + STAGES[2:]:
        at += t.get("read", 0) + t.get("chunk", 0) if stage == "read+chunk" else t.get(stage, 0)
        bounds.append((at, stage))
    peak_by_stage: dict[str, float] = {}
    for when, rss in samples:
        stage = next((name for end, name in bounds if when <= end), "exit") if when > startup else "start-up"
        peak_by_stage[stage] = max(peak_by_stage.get(stage, 0.0), rss)
    return {
        "mb": round(size / 2**20, 2), "chunks": report["chunks_total"], "wall_s": round(wall, 1),
        "ingest_s": report["seconds"], "timings_s": t,
        "chunk_share": round(t.get("chunk", 0) / total, 4) if total else None,
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "peak_rss_mib_by_stage": {k: round(v) for k, v in peak_by_stage.items()},
    }


def chunk_only_child() -> dict:
    """In the child: read and chunk RAG_SEEDS_DIR as ingest does, timing each stage (no embedding)."""
    import resource

    from rag.chunk import chunk_document, make_splitter
    from rag.config import load_settings
    from rag.load import Reader, scan
    from rag.model_cache import load_ingest_embedder

    s = load_settings()
    embedder, _ = load_ingest_embedder(s.model_cache, s.embed_model, precision=s.ingest_precision)
    splitter = make_splitter(s.chunk_size, s.chunk_overlap, embedder.token_ids)
    reader = Reader(scan(s.seeds_dir, s.allow_outside_links), s.max_file_bytes)
    read = chunk = 0.0
    n = 0
    t = time.perf_counter()
    for doc in reader.documents():
        read += time.perf_counter() - t
        t = time.perf_counter()
        n += len(chunk_document(doc, splitter))
        chunk += time.perf_counter() - t
        t = time.perf_counter()
    return {"chunks": n, "read": round(read, 1), "chunk": round(chunk, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def chunk_only(mb: float, work: Path, corpus: Path = SCIFACT) -> dict:
    """Reading and chunking alone (no embedding, no index), in a child process: the stages whose
    cost must stay linear, measured on a file too big to embed in the time at hand."""
    seeds = work / f"seeds-chunk-{mb:g}"
    seeds.mkdir(parents=True)
    size = make_file(seeds / "big.txt", mb, corpus)
    env = {**os.environ, "RAG_SEEDS_DIR": str(seeds), "RAG_INDEX_DIR": str(work / "unused-index"),
           "HF_HUB_OFFLINE": "1", "RAG_MAX_FILE_MB": str(max(50.0, mb * 2))}
    out = subprocess.run([sys.executable, "-m", "evals.bench_bigfile", "--chunk-only-child"], env=env, cwd=work,
                         capture_output=True, text=True, check=True).stdout
    return {"mb": round(size / 2**20, 2), **json.loads(out)}


def _row(r: dict) -> str:
    t = r["timings_s"]
    return (f"| {r['mb']:g} MB | {r['chunks']:,} | {r['ingest_s']:.0f} | {t.get('read', 0):.1f} | "
            f"{t.get('chunk', 0):.1f} ({100 * r['chunk_share']:.1f} %) | {t.get('embed', 0):.0f} | "
            f"{t.get('lexical', 0) + t.get('faiss', 0):.1f} | {t.get('write', 0):.1f} | {r['peak_rss_mib']:,} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.bench_bigfile", description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=float, default=50.0, help="size of the big file in MiB (default 50)")
    p.add_argument("--baseline-mb", type=float, default=None, help="baseline size (default a tenth of --mb)")
    p.add_argument("--out", type=Path, default=Path("reports/bench_bigfile.json"))
    p.add_argument("--corpus", type=Path, default=SCIFACT, help="BEIR corpus.jsonl to draw the prose from")
    p.add_argument("--chunk-only-mb", type=float, default=None,
                   help="also read and chunk (not embed) a file of this size, for its chunking time and memory")
    p.add_argument("--chunk-only-child", action="store_true", help=argparse.SUPPRESS)  # chunk_only's child
    args = p.parse_args(argv)
    if args.chunk_only_child:
        print(json.dumps(chunk_only_child()))
        return 0
    c = None
    if args.chunk_only_mb:
        with tempfile.TemporaryDirectory(prefix="rag-bigfile-") as tmp:
            c = chunk_only(args.chunk_only_mb, Path(tmp), args.corpus)
        print(f"read and chunk only, {c['mb']:g} MB: {c['chunks']:,} chunks, read {c['read']:.1f} s, "
              f"chunk {c['chunk']:.1f} s, peak RSS {c['peak_rss_mib']:,} MiB", flush=True)
    with tempfile.TemporaryDirectory(prefix="rag-bigfile-") as tmp:
        results = [ingest_once(mb, Path(tmp), args.corpus) for mb in (args.baseline_mb or args.mb / 10, args.mb)]
    base, big = results
    print("| file | chunks | ingest s | read s | chunk s (share) | embed s | index s | write s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(_row(r))
    for r in results:
        print(f"peak RSS by stage, {r['mb']:g} MB: "
              + ", ".join(f"{k} {v:,}" for k, v in r["peak_rss_mib_by_stage"].items()))
    ratio = big["mb"] / base["mb"]
    print(f"\n{ratio:.1f}x the text took {big['ingest_s'] / base['ingest_s']:.1f}x the time; chunking "
          f"{big['timings_s'].get('chunk', 0) / max(base['timings_s'].get('chunk', 0), 1e-9):.1f}x; "
          f"peak RSS {big['peak_rss_mib'] / base['peak_rss_mib']:.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                                    f"{platform.python_version()}", "date": time.strftime("%Y-%m-%d"),
                                    "results": results, "chunk_only": c}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
