"""`python -m evals scale`: the stores at 100,000 and 1,000,000 chunks, measured the same way.

Stores: `faiss-flat` (snapshot files, exact search), `faiss-hnsw` (snapshot files, the FAISS scale
path that RAG_FAISS_INDEX=auto picks from 50,000 chunks) and `postgres` (PostgreSQL + pgvector).
The corpus is synthetic (`evals/synthetic.py`: embedding-like vectors, Zipfian text, 100 chunks per
source), because no real collection of a million chunks ships here and embedding one would take
days on this machine. Each measurement runs in its own process, so peak memory is that phase's:

    load      write the prepared chunks and vectors into the store, index building included (the
              chunking and embedding before it are the same for every store: see `evals bench`)
    disk      the snapshot folder, or the schema's tables, indexes and TOAST (pg_total_relation_size)
    question  Engine.ask on synthetic questions: the full path (embed the question with the real
              model, dense + BM25 fusion, the extractive answerer); p50 and p95
    recall    dense recall@10 of the store's vector search against exact search, on question
              vectors whose true neighbours are known
    update    the real `rag ingest` of one changed source of about 100 chunks (read, chunk, embed
              with the real model, write), with every other source unchanged: the snapshot files
              write a delta beside their base (rag/segments.py), PostgreSQL replaces the rows

Results accumulate in reports/scale.json, one entry per (store, size), so each part can run on
its own (e.g. under a lock) and `--report` renders the table and chart from what is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORES = ("faiss-flat", "faiss-hnsw", "postgres")
DOC_CHUNKS = 100
BLOCK = 50_000  # rows generated and written per step (a multiple of DOC_CHUNKS)


def source_of(row: int) -> str:
    return f"doc{row // DOC_CHUNKS:06d}.txt"


def chunk_key(row: int) -> str:
    return f"{source_of(row)}#{row % DOC_CHUNKS}"


def doc_sha(n: int, d: int) -> str:
    return hashlib.sha256(f"scale-{n}-{d}".encode()).hexdigest()


# ----- phases (each in its own process) ------------------------------------------------------
def _settings(store: str, n: int, work: Path, url: str):
    from rag.config import load_settings

    work = Path(work)
    # The environment's settings (e.g. RAG_PG_EF_SEARCH, RAG_PG_HNSW_M) with this run's own places.
    return load_settings().with_(
        seeds_dir=work / "seeds", index_dir=work / f"{store}-{n}", sentence_vectors=False,
        faiss_index="Flat" if store == "faiss-flat" else "auto",  # auto: HNSW32 from 50,000 chunks
        store_url=url if store == "postgres" else "", pg_schema=f"scale_{n}", llm_base_url="",
    )


def _chunks(n: int, start: int, stop: int, texts: list[str]):
    from rag.records import Chunk

    return [Chunk(id=chunk_key(r), source=source_of(r), n=r % DOC_CHUNKS, text=t, title=f"Document {r // DOC_CHUNKS}",
                  date=None, language="en") for r, t in zip(range(start, stop), texts)]


def _docs(n: int, start: int, stop: int):
    """The documents of rows [start, stop) (whole documents), as the manifest records them: source → DocEntry."""
    from rag.index import DocEntry

    return {source_of(d * DOC_CHUNKS): DocEntry(doc_sha(n, d), f"Document {d}", None, "en",
                                                [chunk_key(r) for r in range(d * DOC_CHUNKS, min(n, (d + 1) * DOC_CHUNKS))])
            for d in range(start // DOC_CHUNKS, (stop - 1) // DOC_CHUNKS + 1)}


def phase_load(store: str, n: int, work: Path, url: str) -> dict:
    from evals.synthetic import Corpus
    from rag.model_cache import ensure_export

    s = _settings(store, n, work, url)
    corpus, export = Corpus(n), ensure_export(s.model_cache, s.embed_model)
    vocab = corpus.vocabulary()
    start = time.perf_counter()
    if store == "postgres":
        from rag.pgingest import manifest_for
        from rag.pgstore import PgWriter

        gen = 0.0
        with PgWriter.begin(s, 384, fresh=True) as w:
            for a in range(0, n, BLOCK):
                t = time.perf_counter()
                b = min(n, a + BLOCK)
                texts, vectors = corpus.texts(a, b, vocab), corpus.vectors(a, b)
                gen += time.perf_counter() - t
                w.add(_docs(n, a, b), _chunks(n, a, b, texts), vectors, [None] * (b - a))
            w.commit(manifest_for(s, 384, None, [], export))
    else:
        import numpy as np

        from rag.index import Manifest, lexical_kinds
        from rag.lexical import LexicalIndex
        from rag.store import build_faiss, write_snapshot

        t = time.perf_counter()
        texts, vectors = corpus.texts(0, n, vocab), np.ascontiguousarray(corpus.vectors(0, n))
        chunks = _chunks(n, 0, n, texts)
        gen = time.perf_counter() - t
        documents = _docs(n, 0, n)
        kinds = lexical_kinds({"en"}, n, s.embed_languages)
        lexical = {k: LexicalIndex.build(k, texts) for k in kinds}
        del texts
        faiss_index, spec = build_faiss(vectors, s.faiss_index)
        manifest = Manifest(model=s.embed_model, dim=384, chunk_size=s.chunk_size, chunk_overlap=s.chunk_overlap,
                            faiss_index=spec, sentence_vectors=False, ingest_precision=s.ingest_precision,
                            lexical_kinds=tuple(lexical), documents=documents,
                            embedder=export.record() if export else None, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_snapshot(s.index_dir, manifest, chunks, vectors, None, faiss_index, lexical)
    return {"load_s": round(time.perf_counter() - start - gen, 2), "generate_s": round(gen, 2),
            "disk_mb": round(_disk_bytes(store, s) / 2**20, 1)}


def _disk_bytes(store: str, s) -> int:
    if store != "postgres":
        folder = (s.index_dir / "current").resolve()
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    import psycopg

    with psycopg.connect(s.store_url) as conn:
        return int(conn.execute("""SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
            JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = %s AND c.relkind IN ('r', 'm')""",
                                (s.pg_schema,)).fetchone()[0])


def phase_truth(n: int, questions: int) -> dict:
    """Exact top 10 (brute force over every chunk vector) for each question vector."""
    import numpy as np

    from evals.synthetic import Corpus

    corpus = Corpus(n)
    qv = np.stack([q[2] for q in corpus.questions(questions, corpus.vocabulary())])
    best_s = np.full((len(qv), 10), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(qv), 10), dtype=np.int64)
    for a in range(0, n, BLOCK * 2):
        b = min(n, a + BLOCK * 2)
        sims = qv @ corpus.vectors(a, b).T
        s = np.concatenate([best_s, sims], axis=1)
        i = np.concatenate([best_i, np.broadcast_to(np.arange(a, b), sims.shape)], axis=1)
        top = np.argsort(-s, axis=1, kind="stable")[:, :10]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return {"truth": best_i.tolist()}


def phase_query(store: str, n: int, work: Path, url: str, questions: int, truth: list[list[int]]) -> dict:
    import numpy as np

    from evals.synthetic import Corpus
    from rag.engine import Engine

    s = _settings(store, n, work, url)
    corpus = Corpus(n)
    qs = corpus.questions(questions, corpus.vocabulary())
    engine = Engine(s, auto_ingest=False)
    t = time.perf_counter()
    engine.warm_up()
    warm_s = time.perf_counter() - t
    for _, text, _ in qs[:10]:  # warm caches the way a running bot has them
        engine.ask(text + " warm")
    total, retrieve = [], []
    for _, text, _ in qs:
        t = time.perf_counter()
        answer = engine.ask(text)
        total.append((time.perf_counter() - t) * 1000)
        retrieve.append(answer.timings_ms.get("retrieve", 0.0))
    index = engine.state.index
    recalls, dense_ms = [], []
    for (_, _, qv), exact in zip(qs, truth):
        t = time.perf_counter()
        ids, _ = index.read(lambda v: v.dense(np.asarray(qv, dtype=np.float32), 100))
        dense_ms.append((time.perf_counter() - t) * 1000)
        keys = {c.chunk.id for c in index.read(lambda v: v.fetch(ids[:10].tolist(), None))}
        recalls.append(len(keys & {chunk_key(r) for r in exact}) / 10)
    pct = lambda xs, p: round(float(np.percentile(xs, p)), 2)  # noqa: E731
    return {"question_p50_ms": pct(total, 50), "question_p95_ms": pct(total, 95),
            "retrieve_p50_ms": pct(retrieve, 50), "retrieve_p95_ms": pct(retrieve, 95),
            "dense_p50_ms": pct(dense_ms, 50), "recall_at_10": round(float(np.mean(recalls)), 4),
            "open_s": round(warm_s, 2), "faiss_index": index.manifest.faiss_index}


def phase_update(store: str, n: int, work: Path, url: str) -> dict:
    """`rag ingest` after one source changed: its new text (about 100 chunks) is chunked and embedded."""
    from evals.synthetic import Corpus
    from rag.ingest import build_index
    from rag.records import SourceDoc

    s = _settings(store, n, work, url)
    corpus = Corpus(n)
    vocab = corpus.vocabulary()
    target = (n // DOC_CHUNKS) // 2
    words = " ".join(corpus.texts(target * DOC_CHUNKS, target * DOC_CHUNKS + 60, vocab)).split()
    sentences = [" ".join(words[i:i + 12]).capitalize() + "." for i in range(0, min(len(words), 4900), 12)]
    new_text = " ".join(sentences)
    docs = [SourceDoc(source=source_of(d * DOC_CHUNKS), text=new_text if d == target else "", title=f"Document {d}",
                      date=None, language="en",
                      sha256=hashlib.sha256(new_text.encode()).hexdigest() if d == target else doc_sha(n, d))
            for d in range((n - 1) // DOC_CHUNKS + 1)]
    start = time.perf_counter()
    report = build_index(docs, s)
    seconds = time.perf_counter() - start
    assert report.updated == 1 and report.unchanged == len(docs) - 1, report
    return {"update_s": round(seconds, 2), "update_chunks": report.chunks_embedded}


# ----- orchestration ------------------------------------------------------------------------
def _child(name: str, *args) -> dict:
    """Run one phase in a fresh interpreter; its result and its own peak RSS (MiB)."""
    cmd = [sys.executable, "-c", "import json, sys; from evals import scale; "
           f"print(json.dumps(scale.phase_{name}(*json.loads(sys.argv[1]))))", json.dumps(args, default=str)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"scale phase {name} {args[:2]} failed (exit {os.waitstatus_to_exitcode(status)})")
    return {**json.loads(out.decode().strip().splitlines()[-1]), f"{name}_peak_mb": round(usage.ru_maxrss / 1024, 1)}


def measure(store: str, n: int, work: Path, url: str, questions: int) -> dict:
    print(f"scale: {store} at {n:,} chunks: load…", file=sys.stderr, flush=True)
    row = {"store": store, "chunks": n, "measured": time.strftime("%Y-%m-%d")}
    row |= _child("load", store, n, str(work), url)
    truth = _child("truth", n, questions)["truth"]
    print(f"scale: {store} at {n:,}: questions…", file=sys.stderr, flush=True)
    row |= _child("query", store, n, str(work), url, questions, truth)
    print(f"scale: {store} at {n:,}: one-source update…", file=sys.stderr, flush=True)
    row |= _child("update", store, n, str(work), url)
    return row


def _local_server(work: Path) -> tuple[str, Path]:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="seedrag-scale-pg-")) / "pg"
    folder.parent.chmod(0o755)
    # shared_buffers that hold the HNSW index (about 1.1 GB at 1M chunks) and hot rows, as a server for this size would have
    # rag.pg_local ships in the package, so this works from an installed seedrag as from a checkout.
    out = subprocess.run([sys.executable, "-m", "rag.pg_local", "start", "--dir", str(folder), "--quiet",
                          "--shared-buffers", "3GB"], capture_output=True, text=True)
    if out.returncode != 0:
        shutil.rmtree(folder.parent, ignore_errors=True)
        why = " ".join((out.stderr.strip() or f"exit {out.returncode}").splitlines()[-3:])
        raise LocalServerFailed(f"could not start a local PostgreSQL for the postgres store ({why}); "
                                "set RAG_STORE_URL to a PostgreSQL server with pgvector, or leave out --stores postgres")
    return out.stdout.strip(), folder


class LocalServerFailed(Exception):
    """The private PostgreSQL server `scale` starts when RAG_STORE_URL is unset did not start."""


def run_scale(settings, sizes: list[int], stores: list[str], questions: int, out: Path, report_only: bool,
              keep: bool = False) -> int:
    results = json.loads(out.read_text()) if out.exists() else []
    # A checkout keeps its caches in .rag_cache/; an installed package (site-packages) uses the working folder's.
    work = (ROOT if (ROOT / "pyproject.toml").exists() else Path.cwd()) / ".rag_cache" / "scale"
    server = None
    try:
        for n in sizes if not report_only else ():
            for store in stores:
                url = settings.store_url
                if store == "postgres" and not url:
                    if server is None:
                        try:
                            server = _local_server(work)
                        except LocalServerFailed as err:
                            print(f"error: {err}", file=sys.stderr)
                            return 1
                    url = server[0]
                work.mkdir(parents=True, exist_ok=True)
                try:
                    row = measure(store, n, work, url, questions)
                except RuntimeError as err:
                    print(f"error: {err}; the phase's own output is above", file=sys.stderr)
                    return 1
                if not keep:
                    _cleanup(store, n, work, url)
                results = [r for r in results if (r["store"], r["chunks"]) != (store, n)] + [row]
                results.sort(key=lambda r: (r["chunks"], STORES.index(r["store"])))
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1))
    finally:
        if server is not None:
            subprocess.run([sys.executable, "-m", "rag.pg_local", "stop", "--dir", str(server[1])], capture_output=True)
            shutil.rmtree(server[1].parent, ignore_errors=True)
    print(markdown(results))
    chart = out.with_suffix(".png")
    try:
        draw(results, chart)
        print(f"chart: {chart}", file=sys.stderr)
    except ImportError:
        print("chart skipped: matplotlib is not installed (pip install 'seedrag[eval]')", file=sys.stderr)
    return 0


def _cleanup(store: str, n: int, work: Path, url: str) -> None:
    shutil.rmtree(work / f"{store}-{n}", ignore_errors=True)
    if store == "postgres":
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "scale_{n}" CASCADE')


COLUMNS = (("chunks", "chunks", "{:,}"), ("store", "store", "{}"), ("load_s", "load (s)", "{:,.0f}"),
           ("disk_mb", "on disk (MiB)", "{:,.0f}"), ("load_peak_mb", "load peak (MiB)", "{:,.0f}"),
           ("question_p50_ms", "question p50 (ms)", "{:.1f}"), ("question_p95_ms", "p95 (ms)", "{:.1f}"),
           ("retrieve_p50_ms", "retrieval p50 (ms)", "{:.1f}"), ("query_peak_mb", "answering peak (MiB)", "{:,.0f}"),
           ("recall_at_10", "dense recall@10", "{:.3f}"), ("update_s", "one-source update (s)", "{:.1f}"))


def markdown(results: list[dict]) -> str:
    lines = ["| " + " | ".join(c[1] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        lines.append("| " + " | ".join(fmt.format(r[k]) if k in r else "–" for k, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def draw(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["chunks"] for r in results})
    panels = (("question_p50_ms", "question p50 (ms)"), ("load_s", "load (s)"), ("update_s", "one-source update (s)"),
              ("disk_mb", "on disk (MiB)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    width = 0.8 / len(STORES)
    for ax, (key, title) in zip(axes, panels):
        for j, store in enumerate(STORES):
            vals = [next((r.get(key) for r in results if r["store"] == store and r["chunks"] == n), None) for n in sizes]
            xs = [i + j * width for i, v in enumerate(vals) if v is not None]
            ax.bar(xs, [v for v in vals if v is not None], width, label=store)
        ax.set_xticks([i + width for i in range(len(sizes))], [f"{n:,}" for n in sizes])
        ax.set_title(title)
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
