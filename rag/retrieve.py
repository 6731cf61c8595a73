"""Hybrid retrieval: dense (FAISS), BM25 words and BM25 character n-grams, fused by weighted RRF.

Reciprocal rank fusion needs no score calibration between channels, which matters here: cosine
similarities and BM25 scores live on unrelated scales, and the n-gram channel's scores grow with
word length. Channel weights were tuned on SciFact's train qrels (see evals/README numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.records import Hit
from rag.store import Snapshot

CHANNELS_BY_MODE = {
    "hybrid": ("dense", "bm25", "ngram"),
    "dense": ("dense",),
    "bm25": ("bm25",),
    "ngram": ("ngram",),
    "lexical": ("bm25", "ngram"),
}
DEFAULT_WEIGHTS = {"dense": 1.0, "bm25": 1.0, "ngram": 1.0}


@dataclass(frozen=True)
class FusionParams:
    rrf_k: int = 60
    depth: int = 100
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` best positive scores, best first."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > depth:
        positive = positive[np.argpartition(-scores[positive], depth)[:depth]]
    return positive[np.argsort(-scores[positive], kind="stable")]


class HybridRetriever:
    """Ranks the chunks of one snapshot for a query vector and query text."""

    def __init__(self, snapshot: Snapshot, mode: str = "hybrid", params: FusionParams = FusionParams()):
        self.snapshot = snapshot
        self.channels = CHANNELS_BY_MODE[mode]
        self.params = params

    def rankings(self, qvec: np.ndarray | None, text: str, top_k: int = 0) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        depth = min(max(self.params.depth, top_k), len(self.snapshot.chunks))
        if depth == 0:
            return out
        if "dense" in self.channels and qvec is not None:
            _, ids = self.snapshot.faiss_index.search(qvec.reshape(1, -1).astype(np.float32), depth)
            out["dense"] = ids[0][ids[0] >= 0]
        for kind in ("bm25", "ngram"):
            if kind in self.channels:
                out[kind] = _top(self.snapshot.lexical[kind].scores(text), depth)
        return out

    def retrieve(self, qvec: np.ndarray | None, text: str, top_k: int) -> list[Hit]:
        ranked = self.rankings(qvec, text, top_k)
        weights = dict(self.params.weights)
        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for channel, ids in ranked.items():
            w = weights.get(channel, 1.0)
            for rank, idx in enumerate(ids.tolist(), start=1):
                fused[idx] = fused.get(idx, 0.0) + w / (self.params.rrf_k + rank)
                ranks.setdefault(idx, {})[channel] = rank
        best = sorted(fused, key=lambda i: (-fused[i], i))[:top_k]
        if not best:
            return []
        dense = (
            np.asarray(self.snapshot.vectors[np.array(best)]) @ qvec if qvec is not None else np.zeros(len(best))
        )
        return [
            Hit(
                chunk_index=i,
                chunk=self.snapshot.chunks[i],
                score=fused[i],
                dense=float(d),
                ranks={c: ranks[i].get(c) for c in self.channels},
            )
            for i, d in zip(best, dense)
        ]
