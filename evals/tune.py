"""Grid-search fusion (method, channel weights, RRF k) on a BEIR split: train, so test stays unseen."""

from __future__ import annotations

import itertools
from pathlib import Path

from evals import metrics as M
from evals.datasets import load_beir
from evals.runner import ensure_beir_index
from rag.config import Settings
from rag.engine import Engine
from rag.retrieve import fuse_cc, fuse_rrf


def candidates():
    for d, n in itertools.product((0.4, 0.5, 0.6, 0.7), (0.0, 0.1, 0.25)):
        yield "cc", {"dense": d, "bm25": round(1 - d, 2), "ngram": n}, None
    for b, n, k in itertools.product((0.5, 1.0, 1.5), (0.0, 0.25, 1.0), (10, 30, 60)):
        yield "rrf", {"dense": 1.0, "bm25": b, "ngram": n}, k


def tune_fusion(settings: Settings, folder: Path, split: str = "train") -> int:
    beir = load_beir(folder, split)
    engine = Engine(ensure_beir_index(beir, settings).with_(retriever="hybrid"), auto_ingest=False)
    cached = [(*engine.channel_rankings(q, 300), beir.qrels[qid]) for qid, q in sorted(beir.queries.items())]
    rows = []
    for method, weights, k in candidates():
        total = 0.0
        for results, source, gold in cached:
            fused = fuse_cc(results, weights) if method == "cc" else fuse_rrf(results, weights, k)
            docs = list(dict.fromkeys(source[int(i)] for i in sorted(fused, key=lambda i: -fused[i])))
            total += M.ndcg_at_k(docs, gold, 10)
        rows.append((total / len(cached), method, weights, k))
    rows.sort(key=lambda r: -r[0])
    print(f"| nDCG@10 ({split}, {len(cached)} queries) | fusion | dense | bm25 | ngram | rrf k |")
    print("|---|---|---|---|---|---|")
    for score, method, w, k in rows:
        print(f"| {score:.4f} | {method} | {w['dense']} | {w['bm25']} | {w['ngram']} | {k or '–'} |")
    return 0
