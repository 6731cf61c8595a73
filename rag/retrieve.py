"""Hybrid retrieval: dense (FAISS), BM25 words and BM25 character n-grams, fused into one ranking.

Default fusion is a convex combination of per-query min-max-normalized scores (each channel's
scores scaled over its own top `depth`), which beat reciprocal rank fusion on SciFact's train qrels
(nDCG@10 0.734 vs 0.729 for the best RRF; `python -m evals tune-fusion`), as Bruch et al. (2022)
also report. RRF stays available (RAG_FUSION=rrf) because it needs no score scales at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.languages import guess_language
from rag.records import Hit
from rag.store import Snapshot

CHANNELS_BY_MODE = {
    "hybrid": ("dense", "bm25", "ngram"),
    "dense": ("dense",),
    "bm25": ("bm25",),
    "ngram": ("ngram",),
    "lexical": ("bm25", "ngram"),
}
# Channel weights per chunk, by how the question's language relates to the chunk's and to the
# languages the embedding model knows (RAG_EMBED_LANGUAGES). Each row sums to 1, so chunks of
# different situations compete on one scale.
#   native: same language, and the model knows it. Dense leads; tuned on SciFact train and
#           checked on XQuAD en dev (both article halves).
#   foreign: same language, unknown to the model (German text, English model). An English model
#           embeds German poorly, so words lead; character n-grams match German compounds and
#           inflections that stemming misses (XQuAD de dev: dense alone 0.60 hit@1, n-grams 0.89).
#   cross: question and chunk in different languages, model knows only one. Names, numbers and
#           cognates carry it: dense (names embed alike) and n-grams, helped by the word list's
#           translations in both lexical channels (XQuAD xl dev: 0.68 → 0.77 hit@1).
#   cross_multi: different languages, multilingual model: the model does the cross-lingual work.
SITUATION_WEIGHTS = {
    "native": {"dense": 0.6, "bm25": 0.4, "ngram": 0.0},
    "foreign": {"dense": 0.2, "bm25": 0.2, "ngram": 0.6},
    "cross": {"dense": 0.43, "bm25": 0.14, "ngram": 0.43},
    "cross_multi": {"dense": 0.7, "bm25": 0.1, "ngram": 0.2},
}
SITUATIONS = tuple(SITUATION_WEIGHTS)
RRF_WEIGHTS = {"dense": 1.0, "bm25": 1.0, "ngram": 0.25}
# Query-term weight of a dictionary translation next to the question's own words (1 as well:
# 0.5 was worse on both halves of XQuAD xl dev).
TRANSLATION_WEIGHT = 1.0

ChannelResults = dict[str, tuple[np.ndarray, np.ndarray]]  # channel → (chunk ids best first, scores)


def situation(query_language: str, chunk_language: str, model_languages: tuple[str, ...]) -> str:
    """Which row of SITUATION_WEIGHTS applies to one chunk for one question."""
    multi = "multi" in model_languages
    if query_language in ("und", "") or chunk_language in ("und", "") or query_language == chunk_language:
        lang = chunk_language if query_language in ("und", "") else query_language
        return "native" if multi or lang in model_languages or lang in ("und", "") else "foreign"
    return "cross_multi" if multi else "cross"


@dataclass(frozen=True)
class FusionParams:
    method: str = "cc"
    rrf_k: int = 10
    depth: int = 100
    weights: tuple[tuple[str, float], ...] = tuple(SITUATION_WEIGHTS["native"].items())

    @classmethod
    def for_snapshot(cls, snapshot: Snapshot, method: str = "cc") -> FusionParams:
        if method == "rrf":
            return cls(method="rrf", weights=tuple(RRF_WEIGHTS.items()))
        return cls()


def _top(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` best positive scores, best first."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > depth:
        positive = positive[np.argpartition(-scores[positive], depth)[:depth]]
    return positive[np.argsort(-scores[positive], kind="stable")]


def fuse_rrf(results: ChannelResults, weights: dict[str, float], k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for channel, (ids, _) in results.items():
        w = weights.get(channel, 1.0)
        for rank, idx in enumerate(ids.tolist(), start=1):
            fused[idx] = fused.get(idx, 0.0) + w / (k + rank)
    return fused


def fuse_cc(results: ChannelResults, weights: dict[str, float | np.ndarray]) -> dict[int, float]:
    """Weighted sum of scores min-max scaled over each channel's own candidate list.

    A channel's weight is one number, or an array with one weight per chunk (per-language weights).
    """
    fused: dict[int, float] = {}
    for channel, (ids, scores) in results.items():
        if not len(ids):
            continue
        w = weights.get(channel, 1.0)
        lo, hi = float(scores.min()), float(scores.max())
        scaled = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
        ws = w[ids] if isinstance(w, np.ndarray) else np.full(len(ids), w)
        for idx, v, wi in zip(ids.tolist(), scaled.tolist(), ws.tolist()):
            fused[idx] = fused.get(idx, 0.0) + wi * v
    return fused


def fuse(results: ChannelResults, params: FusionParams,
         weights: dict[str, float | np.ndarray] | None = None) -> dict[int, float]:
    # A single-channel mode ranks by that channel, whatever its weight in the hybrid mix.
    if len(results) == 1:
        weights = {c: 1.0 for c in results}
    elif weights is None or params.method == "rrf":
        weights = dict(params.weights)
    if params.method == "rrf":
        return fuse_rrf(results, weights, params.rrf_k)
    return fuse_cc(results, weights)


class HybridRetriever:
    """Ranks the chunks of one snapshot for a query vector and query text."""

    def __init__(self, snapshot: Snapshot, mode: str = "hybrid", params: FusionParams | None = None,
                 fusion: str = "cc", model_languages: tuple[str, ...] = ("en",)):
        self.snapshot = snapshot
        self.channels = CHANNELS_BY_MODE[mode]
        self.params = params or FusionParams.for_snapshot(snapshot, fusion)
        self.model_languages = model_languages
        langs = [c.language for c in snapshot.chunks]
        self._chunk_langs = sorted(set(langs))
        self._lang_rows = {lang: np.array([x == lang for x in langs]) for lang in self._chunk_langs}

    def chunk_weights(self, query_language: str) -> dict[str, np.ndarray]:
        """Per-chunk channel weights for a question in `query_language` (see SITUATION_WEIGHTS)."""
        n = len(self.snapshot.chunks)
        out = {c: np.zeros(n, dtype=np.float32) for c in ("dense", "bm25", "ngram")}
        for lang, rows in self._lang_rows.items():
            w = SITUATION_WEIGHTS[situation(query_language, lang, self.model_languages)]
            for c in out:
                out[c][rows] = w[c]
        return out

    def translations(self, text: str) -> dict[str, dict[str, float]]:
        """Extra lexical tokens for English questions over German chunks (see rag.lexicon)."""
        if "multi" in self.model_languages or "de" not in self._chunk_langs or guess_language(text) != "en":
            return {}
        from rag.lexical import content_words, ngram_tokens
        from rag.lexicon import translate
        from rag.languages import stem_words

        german = sorted({g for gs in translate(content_words(text, "en")).values() for g in gs})
        if not german:
            return {}
        return {
            "bm25": dict.fromkeys(stem_words(german, "de"), TRANSLATION_WEIGHT),
            "ngram": dict.fromkeys(ngram_tokens(" ".join(german), "und"), TRANSLATION_WEIGHT),
        }

    def weights_for(self, text: str) -> dict[str, float | np.ndarray]:
        if self.params.method == "rrf" or self.params.weights != FusionParams().weights:
            return dict(self.params.weights)  # explicitly chosen weights (RRF, tuning) win
        return self.chunk_weights(guess_language(text))

    def rankings(self, qvec: np.ndarray | None, text: str, top_k: int = 0,
                 weights: dict[str, float | np.ndarray] | None = None) -> ChannelResults:
        out: ChannelResults = {}
        depth = min(max(self.params.depth, top_k), len(self.snapshot.chunks))
        if depth == 0:
            return out
        if "dense" in self.channels and qvec is not None:
            scores, ids = self.snapshot.faiss_index.search(qvec.reshape(1, -1).astype(np.float32), depth)
            keep = ids[0] >= 0
            out["dense"] = (ids[0][keep], scores[0][keep])
        weights = weights if weights is not None else dict(self.params.weights)
        extra = self.translations(text) if any(k in self.channels for k in ("bm25", "ngram")) else {}
        for kind in ("bm25", "ngram"):
            w = weights.get(kind, 1.0)
            used = bool(np.any(w > 0)) if isinstance(w, np.ndarray) else w > 0
            if kind in self.channels and (used or len(self.channels) == 1):  # weight-0 channels are skipped
                all_scores = self.snapshot.lexical[kind].scores(text, extra.get(kind))
                ids = _top(all_scores, depth)
                out[kind] = (ids, all_scores[ids])
        return out

    def retrieve(self, qvec: np.ndarray | None, text: str, top_k: int) -> list[Hit]:
        weights = self.weights_for(text)
        results = self.rankings(qvec, text, top_k, weights)
        fused = fuse(results, self.params, weights)
        ranks = {c: {idx: r for r, idx in enumerate(ids.tolist(), start=1)} for c, (ids, _) in results.items()}
        best = sorted(fused, key=lambda i: (-fused[i], i))[:top_k]
        if not best:
            return []
        dense = (
            np.asarray(self.snapshot.vectors[np.array(best)]) @ qvec if qvec is not None else np.zeros(len(best))
        )
        return [
            Hit(chunk_index=i, chunk=self.snapshot.chunks[i], score=fused[i], dense=float(d),
                ranks={c: ranks.get(c, {}).get(i) for c in self.channels})
            for i, d in zip(best, dense)
        ]
