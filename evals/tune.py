"""Grid-search RRF channel weights and k on a BEIR split (train), so defaults are not tuned on test."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from evals import metrics as M
from evals.datasets import load_beir
from evals.runner import ensure_beir_index
from rag.config import Settings
from rag.engine import Engine

GRID = {
    "bm25": (0.5, 1.0, 1.5),
    "ngram": (0.0, 0.25, 0.5, 1.0),
    "rrf_k": (10, 30, 60, 100),
}


def fuse(rankings: dict[str, list[int]], weights: dict[str, float], k: int) -> list[int]:
    scores: dict[int, float] = {}
    for channel, ids in rankings.items():
        w = weights.get(channel, 1.0)
        if w:
            for rank, idx in enumerate(ids, start=1):
                scores[idx] = scores.get(idx, 0.0) + w / (k + rank)
    return sorted(scores, key=lambda i: (-scores[i], i))


def tune_fusion(settings: Settings, folder: Path, split: str = "train") -> int:
    beir = load_beir(folder, split)
    engine = Engine(ensure_beir_index(beir, settings).with_(retriever="hybrid"), auto_ingest=False)
    retriever = engine.state.retriever
    chunks = engine.state.snapshot.chunks
    cached = []
    for qid, query in sorted(beir.queries.items()):
        qvec = engine.embed_query(query)
        ranks = {c: ids.tolist() for c, ids in retriever.rankings(qvec, query, 300).items()}
        cached.append((ranks, beir.qrels[qid]))
    results = []
    for wb, wn, k in itertools.product(GRID["bm25"], GRID["ngram"], GRID["rrf_k"]):
        weights = {"dense": 1.0, "bm25": wb, "ngram": wn}
        score = 0.0
        for ranks, gold in cached:
            docs = list(dict.fromkeys(chunks[i].source for i in fuse(ranks, weights, k)))
            score += M.ndcg_at_k(docs, gold, 10)
        results.append((score / len(cached), wb, wn, k))
    results.sort(reverse=True)
    print(f"| nDCG@10 ({split}, {len(cached)} queries) | dense | bm25 | ngram | rrf_k |\n|---|---|---|---|---|")
    for score, wb, wn, k in results[:10]:
        print(f"| {score:.4f} | 1.0 | {wb} | {wn} | {k} |")
    print(f"worst: {results[-1][0]:.4f}", file=sys.stderr)
    return 0
