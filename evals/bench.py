"""Speed benchmark: this project's pipeline next to a plain llama-index pipeline, same machine, same run.

Every measurement runs in its own child process (cold starts must be cold; peak memory must be
one pipeline's own), and the table prints each figure beside the baseline's with the ratio.
The ingest floor is arithmetic: the model's FLOPs for the real (unpadded) tokens divided by this
machine's measured fp32 matrix-multiply rate, so "% of floor" says how close embedding runs to
what the hardware can do at all.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "benchmarks" / "beir-scifact"
QUESTION = "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?"


# ----- child-process helpers --------------------------------------------------------------------
def _run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, the child's own peak RSS (MiB, through wait4) and its stdout."""
    from rag.progress import Progress

    start = time.perf_counter()
    with Progress(None, "bench: " + " ".join(cmd[1:5])):  # workers run for minutes with stderr muted
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:5])}… exited {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def _worker(task: str, *args: str, env: dict | None = None) -> dict:
    wall, rss, out = _run_measured([sys.executable, "-m", "evals.bench", "worker", task, *args], env)
    data = json.loads(out.strip().splitlines()[-1])
    data["peak_mb"] = round(rss, 1)
    return data


# ----- workers (run inside child processes) -----------------------------------------------------
def _questions(kind: str | None = None) -> list[str]:
    """The seeds questions, or those of one kind ("crosslingual": English questions over the German
    seed file, answered through the English–German word list)."""
    from evals.datasets import load_qa

    return [q.question for q in load_qa(ROOT / "evals" / "seeds_qa.jsonl") if kind is None or q.kind == kind]


CROSS_ROUNDS = 5  # each English-over-German question is asked this often: few questions, steadier percentiles


def _pcts(values: list[float]) -> dict:
    from evals.metrics import percentile

    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2)}


def worker_warm_ours(index_dir: str, seeds: str) -> dict:
    from rag.engine import Engine
    from rag.startup import settings_from_environment

    engine = Engine(settings_from_environment().with_(index_dir=Path(index_dir), seeds_dir=Path(seeds)))
    engine.warm_up()
    stages: dict[str, list[float]] = {}
    engine.forget_query_vectors()
    for q in _questions():  # first time each: the query embedding is computed
        a = engine.ask(q)
        for k in ("embed_query", "retrieve", "answer", "total"):
            stages.setdefault(k, []).append(a.timings_ms[k])
    cached = [engine.ask(q).timings_ms["total"] for q in _questions()]  # repeated: embedding cache hit
    # English questions over German text: every sentence is checked against each question word's
    # German forms (rag.answer), the costliest path of re-ranking (in "retrieve") and answering.
    cross: dict[str, list[float]] = {}
    for _ in range(CROSS_ROUNDS):
        for q in _questions("crosslingual"):
            a = engine.ask(q)
            for k in ("retrieve", "answer"):
                cross.setdefault(k, []).append(a.timings_ms[k])
    return {"stages": {k: _pcts(v) for k, v in stages.items()}, "cached_total": _pcts(cached),
            "cross": {k: _pcts(v) for k, v in cross.items()}}


def worker_warm_base(persist: str) -> dict:
    from llama_index.core.schema import QueryBundle

    from evals.baseline import load

    index = load(persist)
    retriever = index.as_retriever(similarity_top_k=5)
    embed = index._embed_model
    retriever.retrieve("warm up")

    def timed(questions: list[str]) -> dict[str, list[float]]:
        stages: dict[str, list[float]] = {"embed_query": [], "retrieve": [], "total": []}
        for q in questions:
            t0 = time.perf_counter()
            vec = embed.get_query_embedding(q)
            t1 = time.perf_counter()
            retriever.retrieve(QueryBundle(q, embedding=vec))
            t2 = time.perf_counter()
            stages["embed_query"].append((t1 - t0) * 1000)
            stages["retrieve"].append((t2 - t1) * 1000)
            stages["total"].append((t2 - t0) * 1000)
        return stages

    cross = timed(_questions("crosslingual") * CROSS_ROUNDS)["retrieve"]
    return {"stages": {k: _pcts(v) for k, v in timed(_questions()).items()}, "cross": {"retrieve": _pcts(cross)}}


def _scifact_docs(limit: int, folder: str) -> list[dict]:
    from evals.datasets import load_beir

    corpus = load_beir(Path(folder), "test").corpus
    return corpus[:limit] if limit else corpus


def _flops(token_counts: list[int], config) -> float:
    """Forward FLOPs of a BERT encoder over sequences of the given lengths (special tokens included)."""
    h, L, i = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_token = 2 * L * (4 * h * h + 2 * h * i)
    return float(sum(per_token * n + 4 * L * h * n * n for n in token_counts))


def worker_ingest_ours(limit: str, index_dir: str, precision: str, folder: str) -> dict:
    """The product's ingest path: our chunking, then onnxruntime over length-sorted batches.

    It also scores the vectors it made (dense retrieval, SciFact test queries embedded in fp32 as
    the product does), so the int8 copy's speed is reported next to what it costs in quality.
    """
    from transformers import AutoConfig

    from rag.chunk import chunk_document, make_splitter
    from rag.config import resolve_model_path
    from rag.embed import OnnxEmbedder
    from rag.model_cache import load_ingest_embedder
    from rag.records import SourceDoc
    from rag.startup import settings_from_environment

    s = settings_from_environment()
    docs = _scifact_docs(int(limit), folder)
    embedder, export = load_ingest_embedder(s.model_cache, s.embed_model, precision=precision)
    t0 = time.perf_counter()
    splitter = make_splitter(s.chunk_size, s.chunk_overlap, embedder.token_ids)
    chunks = [c for d in docs for c in chunk_document(
        SourceDoc(d["id"], f"{d['title']} {d['text']}", d["title"], None, "en", ""), splitter)]
    t1 = time.perf_counter()
    texts = [c.text for c in chunks]
    vectors = embedder.embed_batch(texts)
    t2 = time.perf_counter()
    counts = [len(e.ids) for e in embedder.tokenizer.encode_batch(texts)]  # as run: truncated, with [CLS]/[SEP]
    config = AutoConfig.from_pretrained(resolve_model_path(s.embed_model))
    ndcg = _dense_ndcg([c.source for c in chunks], vectors, OnnxEmbedder(export.folder, s.embed_model), folder)
    return {"precision": precision, "chunks": len(texts), "tokens": sum(counts), "chunk_s": t1 - t0,
            "embed_s": t2 - t1, "flops": _flops(counts, config), "dense_ndcg10": round(ndcg, 4)}


def _dense_ndcg(sources: list[str], vectors, query_embedder, folder: str) -> float:
    """nDCG@10 of dense retrieval on SciFact test, a document scored by its best chunk."""
    import numpy as np

    from evals.datasets import load_beir
    from evals.metrics import mean, ndcg_at_k

    beir = load_beir(Path(folder), "test")
    qids = [q for q in beir.queries if beir.qrels.get(q)]
    scores = query_embedder.embed_batch([beir.queries[q] for q in qids]) @ vectors.T
    doc_ids = sorted(set(sources))
    column = {d: i for i, d in enumerate(doc_ids)}
    owner = np.array([column[src] for src in sources])
    per_doc = np.full((len(qids), len(doc_ids)), -np.inf, dtype=np.float32)
    for j in range(len(sources)):  # max over each document's chunks
        np.maximum(per_doc[:, owner[j]], scores[:, j], out=per_doc[:, owner[j]])
    ranked = np.argsort(-per_doc, axis=1)[:, :10]
    return mean([ndcg_at_k([doc_ids[i] for i in row], beir.qrels[q], 10) for q, row in zip(qids, ranked)])


def worker_ingest_base(limit: str, folder: str) -> dict:
    import faiss
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.faiss import FaissVectorStore

    from evals.baseline import _embed_model

    docs = [Document(text=f"{d['title']} {d['text']}", doc_id=d["id"]) for d in _scifact_docs(int(limit), folder)]
    embed = _embed_model()
    t0 = time.perf_counter()
    ctx = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatL2(384)))
    index = VectorStoreIndex.from_documents(docs, storage_context=ctx, embed_model=embed)
    t1 = time.perf_counter()
    nodes = list(index.docstore.docs.values())
    tok = embed._model.tokenizer
    counts = [min(len(tok.encode(n.get_content(metadata_mode="embed"))), embed._model.max_seq_length)
              for n in nodes]  # what the model actually read: longer nodes are cut at 256 tokens
    return {"chunks": len(nodes), "tokens": sum(counts), "embed_s": t1 - t0,
            "flops": _flops(counts, embed._model[0].auto_model.config)}


def worker_matmul() -> dict:
    """Best fp32 GEMM rate of torch on this machine (the rate the encoder's matmuls can reach)."""
    import torch

    best = 0.0
    for n in (1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        for _ in range(10):
            t = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return {"gflops": best / 1e9, "threads": torch.get_num_threads()}


WORKERS = {"warm-ours": worker_warm_ours, "warm-base": worker_warm_base, "ingest-ours": worker_ingest_ours,
           "ingest-base": worker_ingest_base, "matmul": worker_matmul}


# ----- orchestration ------------------------------------------------------------------------------
def _cold(cmd: list[str], env: dict, runs: int) -> dict:
    walls, peaks = [], []
    for _ in range(runs):
        wall, rss, _ = _run_measured(cmd, env)
        walls.append(wall)
        peaks.append(rss)
    return {"median_s": round(statistics.median(walls), 3), "runs": [round(w, 3) for w in walls],
            "peak_mb": round(max(peaks), 1)}


def check_beir(folder: Path) -> None:
    """FileNotFoundError (one line, before minutes of measuring) unless `folder` is a BEIR test set."""
    missing = [name for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} is not a BEIR folder (no {', '.join(missing)}); the ingest part needs "
                                "SciFact there (README, 'Eval harness': where it comes from) or --dataset FOLDER")


def run_bench(settings, out: Path, quick: bool = False, dataset: Path = SCIFACT) -> int:
    check_beir(dataset)
    folder = str(dataset.resolve())
    runs = 3 if quick else 5
    limit = "500" if quick else "0"
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        env = {**os.environ, "RAG_INDEX_DIR": str(tmp / "index"), "RAG_SEEDS_DIR": str(ROOT / "seeds"),
               "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
        print("building both indexes over seeds/ …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "rag", "ingest"], env=env, cwd=ROOT, check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "evals.baseline", "build", str(ROOT / "seeds"), str(tmp / "base")],
                       env=env, cwd=ROOT, check=True, capture_output=True)
        print("cold starts …", file=sys.stderr)
        res: dict = {"date": time.strftime("%Y-%m-%d"), "machine": _machine(), "quick": quick}
        res["cold_ours"] = _cold([sys.executable, "-m", "rag", "ask", "--json", QUESTION], env, runs)
        res["cold_base"] = _cold([sys.executable, "-m", "evals.baseline", "ask", str(tmp / "base"), QUESTION], env, runs)
        print("warm questions …", file=sys.stderr)
        res["warm_ours"] = _worker("warm-ours", str(tmp / "index"), str(ROOT / "seeds"), env=env)
        res["warm_base"] = _worker("warm-base", str(tmp / "base"), env=env)
        print(f"ingest throughput on {dataset.name} ({'500 docs' if quick else 'all documents'}) …", file=sys.stderr)
        # The GEMM rate of this shared machine drifts (single readings of about 100-178 GFLOP/s):
        # measure it between the ingests and use the highest reading for every floor (the
        # conservative choice).
        rates = [_worker("matmul", env=env)]
        res["ingest_ours"] = _worker("ingest-ours", limit, str(tmp / "index"), "fp32", folder, env=env)
        rates.append(_worker("matmul", env=env))
        res["ingest_int8"] = _worker("ingest-ours", limit, str(tmp / "index"), "int8", folder, env=env)
        rates.append(_worker("matmul", env=env))
        res["ingest_base"] = _worker("ingest-base", limit, folder, env=env)
        rates.append(_worker("matmul", env=env))
        res["matmul"] = max(rates, key=lambda r: r["gflops"])
        res["matmul"]["readings"] = [round(r["gflops"], 1) for r in rates]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for key in ("ingest_ours", "ingest_int8", "ingest_base"):
        r = res[key]
        r["chunks_per_s"] = round(r["chunks"] / r["embed_s"], 1)
        r["tokens_per_s"] = round(r["tokens"] / r["embed_s"], 1)
        r["floor_s"] = round(r["flops"] / (res["matmul"]["gflops"] * 1e9), 2)
        r["pct_of_floor"] = round(100 * r["floor_s"] / r["embed_s"], 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(render_table(res))
    print(f"\nsaved {out}", file=sys.stderr)
    return 0


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, {platform.system()}"


def render_table(r: dict) -> str:
    def ratio(a, b):
        return f"{b / a:.1f}× faster" if a and b and b >= a else (f"{a / b:.1f}× slower" if a and b else "–")

    wo, wb = r["warm_ours"]["stages"], r["warm_base"]["stages"]
    io, ib, i8 = r["ingest_ours"], r["ingest_base"], r["ingest_int8"]
    rows = [
        ("cold start → first answer (median s)", r["cold_ours"]["median_s"], r["cold_base"]["median_s"], ratio(r["cold_ours"]["median_s"], r["cold_base"]["median_s"])),
        ("cold start peak memory (MiB)", r["cold_ours"]["peak_mb"], r["cold_base"]["peak_mb"], f"{r['cold_base']['peak_mb'] / r['cold_ours']['peak_mb']:.1f}× less"),
    ]

    def stage_rows(ours_stages: dict, base_stages: dict, stages: tuple[str, ...], what: str = "") -> None:
        for stage in stages:
            for p in ("p50", "p95"):
                ours = ours_stages.get(stage, {}).get(p)
                base = base_stages.get(stage, {}).get(p)
                rows.append((f"warm {stage} {p}{what} (ms)", ours, base if base is not None else "n/a (no answer stage)",
                             ratio(ours, base) if isinstance(base, float) else "–"))

    stage_rows(wo, wb, ("embed_query", "retrieve", "answer", "total"))
    stage_rows(r["warm_ours"]["cross"], r["warm_base"]["cross"], ("retrieve", "answer"), ", English question over German text")
    rows += [
        ("warm total p50, repeated question (ms)", r["warm_ours"]["cached_total"]["p50"], "–", "–"),
        ("warm peak memory (MiB)", r["warm_ours"]["peak_mb"], r["warm_base"]["peak_mb"], f"{r['warm_base']['peak_mb'] / r['warm_ours']['peak_mb']:.1f}× less"),
        ("ingest chunks", io["chunks"], ib["chunks"], "–"),
        ("ingest embed time (s)", round(io["embed_s"], 1), round(ib["embed_s"], 1), ratio(io["embed_s"], ib["embed_s"])),
        ("ingest chunks/s", io["chunks_per_s"], ib["chunks_per_s"], "–"),
        ("ingest tokens/s", io["tokens_per_s"], ib["tokens_per_s"], f"{io['tokens_per_s'] / ib['tokens_per_s']:.2f}×"),
        (f"arithmetic floor (s) at {r['matmul']['gflops']:.0f} GFLOP/s (highest of {r['matmul']['readings']})",
         io["floor_s"], ib["floor_s"], "–"),
        ("% of arithmetic floor", io["pct_of_floor"], ib["pct_of_floor"], "–"),
        ("ingest peak memory (MiB)", io["peak_mb"], ib["peak_mb"], "–"),
        ("ingest tokens/s, int8 copy (optional)", i8["tokens_per_s"], "–", f"{i8['tokens_per_s'] / io['tokens_per_s']:.2f}× fp32"),
        ("SciFact dense nDCG@10, fp32 vectors", io["dense_ndcg10"], "–", "–"),
        ("SciFact dense nDCG@10, int8 vectors", i8["dense_ndcg10"], "–", f"{i8['dense_ndcg10'] - io['dense_ndcg10']:+.4f} vs fp32"),
    ]
    lines = [f"Benchmark {r['date']} on {r['machine']}" + (" (quick)" if r.get("quick") else ""), "",
             "| measure | this project | plain llama-index | ratio |", "|---|---:|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "worker":
        import logging

        logging.disable(logging.WARNING)
        print(json.dumps(WORKERS[sys.argv[2]](*sys.argv[3:])))
    else:
        print("run it as: python -m evals bench", file=sys.stderr)
        sys.exit(2)
