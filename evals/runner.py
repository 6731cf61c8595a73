"""Run a dataset through the product's own Engine under one or more named configurations.

Configurations differ only in settings (retriever mode, abstention threshold), all on the same
index, so a comparison isolates the one thing that changed.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

from evals import metrics as M
from evals.datasets import BeirSet, QAItem
from rag.config import Settings
from rag.engine import Engine, build_engine
from rag.errors import RagError

CONFIGS: dict[str, dict] = {
    "default": {},
    "hybrid": {"retriever": "hybrid"},
    "hybrid-rrf": {"retriever": "hybrid", "fusion": "rrf"},
    "dense": {"retriever": "dense"},
    "bm25": {"retriever": "bm25"},
    "ngram": {"retriever": "ngram"},
    "lexical": {"retriever": "lexical"},
    "no-abstain": {"min_confidence": 0.0},
}
CACHE = Path(".rag_cache")


def config_settings(base: Settings, name: str) -> Settings:
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
    return base.with_(**CONFIGS[name])


def _progress(items, desc: str):
    from rag.progress import track

    return track(items, desc, "question")


def describe(settings: Settings, name: str) -> dict:
    keys = ("embed_model", "retriever", "fusion", "top_k", "chunk_size", "chunk_overlap", "faiss_index", "min_confidence")
    d = {k: getattr(settings, k) for k in keys}
    d["store"] = "postgresql" if settings.store_url else "files"
    return {"name": name, **d, "backend": "llm" if settings.llm_base_url else "extractive"}


# ----- QA datasets ------------------------------------------------------------------------
def qa_row(item: QAItem, engine: Engine) -> dict:
    start = time.perf_counter()
    try:
        a = engine.ask(item.question)
    except RagError as err:
        return {"id": item.id, "question": item.question, "kind": item.kind, "error": str(err),
                "retrieved": [], "answer": "", "abstained": True, "cited_sources": [], "latency_ms": {},
                "gold_answers": item.answers, "gold_sources": item.sources}
    wall = (time.perf_counter() - start) * 1000
    return {
        "id": item.id, "question": item.question, "kind": item.kind,
        "retrieved": a.retrieved, "answer": a.text, "abstained": a.abstained,
        "cited_sources": [c.source for c in a.citations], "citation_numbers": [c.n for c in a.citations],
        "latency_ms": {**{k: round(v, 2) for k, v in a.timings_ms.items()}, "wall": round(wall, 2)},
        "gold_answers": item.answers, "gold_sources": item.sources, "backend": a.backend,
        "confidence": a.confidence,
    }


def score_qa_row(row: dict) -> dict:
    gold = set(row["gold_sources"])
    answerable = bool(row["gold_answers"] or gold)
    s: dict = {"answerable": answerable}
    if gold:
        r = row["retrieved"]
        s.update({"hit@1": M.hit_at_k(r, gold, 1), "hit@5": M.hit_at_k(r, gold, 5), "mrr": M.mrr(r, gold),
                  "ndcg@10": M.ndcg_at_k(r, gold, 10)})
    if answerable:
        s["false_abstention"] = float(row["abstained"])
        if row["gold_answers"]:
            s["answer_contains"] = 0.0 if row["abstained"] else M.answer_contains(row["answer"], row["gold_answers"])
            s["first_sentence_contains"] = (
                0.0 if row["abstained"] else M.first_sentence_contains(row["answer"], row["gold_answers"])
            )
            s["token_f1"] = 0.0 if row["abstained"] else M.token_f1(row["answer"], row["gold_answers"])
        if not row["abstained"]:
            s["answer_words"] = float(M.answer_words(row["answer"]))
        if gold and not row["abstained"]:
            s["citation_precision"] = M.citation_precision(row["cited_sources"], gold)
    else:
        s["abstention_accuracy"] = float(row["abstained"])
    s["citation_validity"] = M.citation_validity(row["answer"], set(row.get("citation_numbers", [])))
    return s


METRIC_KEYS = ("hit@1", "hit@5", "mrr", "ndcg@10", "recall@100", "answer_contains", "first_sentence_contains",
               "token_f1", "citation_precision", "citation_validity", "abstention_accuracy", "false_abstention")
# Summarized by the median rather than the mean: one long multi-sentence answer should not hide
# that most answers are short.
MEDIAN_KEYS = ("answer_words",)


def summarize(rows: list[dict]) -> dict:
    out: dict = {"n": len(rows)}
    for key in METRIC_KEYS:
        vals = [r["metrics"].get(key) for r in rows if r["metrics"].get(key) is not None]
        if vals:
            out[key if key != "false_abstention" else "false_abstention_rate"] = M.mean(vals)
    for key in MEDIAN_KEYS:
        vals = [r["metrics"][key] for r in rows if r["metrics"].get(key) is not None]
        if vals:
            out[f"{key}_median"] = M.median(vals)
    stages = sorted({k for r in rows for k in r.get("latency_ms", {})})
    out["latency_ms"] = {
        st: {"p50": round(M.percentile([r["latency_ms"][st] for r in rows if st in r["latency_ms"]], 50), 2),
             "p95": round(M.percentile([r["latency_ms"][st] for r in rows if st in r["latency_ms"]], 95), 2)}
        for st in stages
    }
    return out


def by_kind(rows: list[dict]) -> dict:
    kinds = sorted({r.get("kind") or "" for r in rows})
    return {k or "(none)": summarize([r for r in rows if (r.get("kind") or "") == k]) for k in kinds}


def run_qa(settings: Settings, items: list[QAItem], name: str, dataset: str) -> dict:
    engine = build_engine(config_settings(settings, name))
    rows = []
    for item in _progress(items, f"{name}"):
        row = qa_row(item, engine)
        row["metrics"] = score_qa_row(row)
        rows.append(row)
    return {"dataset": dataset, "config": describe(engine.settings, name), "summary": summarize(rows),
            "by_kind": by_kind(rows), "rows": rows}


def cache_schema(index_dir: Path) -> str:
    """The PostgreSQL schema that holds the eval cache `index_dir` when a run uses a database: the
    folder's name made a valid schema name (a BEIR folder may be called `SciFact` or `beir.v2`)."""
    from rag.config import PG_SCHEMA_MAX

    name = re.sub(r"[^a-z0-9_]", "_", index_dir.name.lower())
    name = name if re.match(r"[a-z_]", name) else f"_{name}"
    if len(name) > PG_SCHEMA_MAX:  # keep it unique: the cache key's hash ends the folder name
        name = f"{name[:PG_SCHEMA_MAX - 13]}_{hashlib.sha1(name.encode()).hexdigest()[:12]}"
    return name


def index_dir_for_seeds(seeds: Path) -> Path:
    return CACHE / f"seeds-{hashlib.sha1(str(seeds.resolve()).encode()).hexdigest()[:10]}"


# ----- BEIR --------------------------------------------------------------------------------
def beir_index_dir(beir: BeirSet, settings: Settings) -> Path:
    from rag.store import PIPELINE_VERSION

    model = re.sub(r"[^A-Za-z0-9]+", "-", settings.embed_model)[-40:]
    key = f"{beir.corpus_hash()}-{model}-{settings.chunk_size}-{settings.chunk_overlap}-{settings.faiss_index}-p{PIPELINE_VERSION}"
    return CACHE / f"beir-{beir.folder.name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def ensure_beir_index(beir: BeirSet, settings: Settings) -> Settings:
    """Build (once) and cache an index of the corpus; later runs with the same config reuse it."""
    from rag.ingest import build_index
    from rag.records import SourceDoc

    from rag.index import has_index

    index_dir = beir_index_dir(beir, settings)
    # In PostgreSQL the cached index is a schema named like the cache folder.
    s = settings.with_(index_dir=index_dir, sentence_vectors=False, pg_schema=cache_schema(index_dir))
    if has_index(s):
        return s
    where = f"PostgreSQL schema {s.pg_schema}" if s.store_url else str(index_dir)
    print(f"embedding {len(beir.corpus)} documents into {where} (cached for later runs)…", file=sys.stderr)
    docs = [
        SourceDoc(source=d["id"], text=f"{d['title']} {d['text']}".strip(), title=d["title"], date=None,
                  language="en", sha256=hashlib.sha256((d["title"] + "\n" + d["text"]).encode()).hexdigest())
        for d in beir.corpus
    ]
    from rag.progress import Progress

    with Progress(None, f"indexing {len(docs):,} documents"):  # reports the phases that have no count
        report = build_index(docs, s, progress=True)
    print(f"indexed {report.chunks_total} chunks in {report.seconds:.0f} s", file=sys.stderr)
    return s


def run_beir(settings: Settings, beir: BeirSet, name: str, dataset: str, limit: int | None = None) -> dict:
    s = config_settings(ensure_beir_index(beir, settings), name)
    engine = Engine(s, auto_ingest=False)
    rows = []
    qids = sorted(beir.queries)[:limit] if limit else sorted(beir.queries)
    for qid in _progress(qids, name):
        query = beir.queries[qid]
        start = time.perf_counter()
        hits, _, timings = engine.retrieve(query, top_k=300)
        ranked = list(dict.fromkeys(h.chunk.source for h in hits))[:100]
        gold = beir.qrels[qid]
        timings["wall"] = (time.perf_counter() - start) * 1000
        rows.append({
            "id": qid, "question": query, "kind": "", "retrieved": ranked, "answer": None, "abstained": None,
            "cited_sources": [], "latency_ms": {k: round(v, 2) for k, v in timings.items()},
            "metrics": {"hit@1": M.hit_at_k(ranked, gold, 1), "hit@5": M.hit_at_k(ranked, gold, 5),
                        "mrr": M.mrr(ranked, gold), "ndcg@10": M.ndcg_at_k(ranked, gold, 10),
                        "recall@100": M.recall_at_k(ranked, gold, 100)},
        })
    return {"dataset": dataset, "config": describe(s, name), "summary": summarize(rows), "by_kind": {},
            "rows": rows}


__all__ = ["run_qa", "run_beir", "CONFIGS", "summarize", "asdict"]
