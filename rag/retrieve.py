"""Hybrid retrieval: dense (FAISS), BM25 words and BM25 character n-grams, fused into one ranking.

Default fusion is a convex combination of per-query min-max-normalized scores (each channel's
scores scaled over its own top `depth`), which beat reciprocal rank fusion on SciFact's train qrels
(nDCG@10 0.734 vs 0.729 for the best RRF; `python -m evals tune-fusion`), as Bruch et al. (2022)
also report. RRF stays available (RAG_FUSION=rrf) because it needs no score scales at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.index import Index, IndexView
from rag.languages import guess_language
from rag.records import Hit

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
RRF_WEIGHTS = {"dense": 1.0, "bm25": 1.0, "ngram": 0.25}

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
    # Default weights follow the languages (SITUATION_WEIGHTS); tuning and RRF set their own.
    by_language: bool = True

    @classmethod
    def for_index(cls, index: Index, method: str = "cc") -> FusionParams:
        if method == "rrf":
            return cls(method="rrf", weights=tuple(RRF_WEIGHTS.items()), by_language=False)
        return cls()


def fuse_rrf(results: ChannelResults, weights: dict[str, float], k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for channel, (ids, _) in results.items():
        w = weights.get(channel, 1.0)
        for rank, idx in enumerate(ids.tolist(), start=1):
            fused[idx] = fused.get(idx, 0.0) + w / (k + rank)
    return fused


Weights = dict[str, float | dict[int, float]]  # channel → one weight, or one per chunk id


def fuse_cc(results: ChannelResults, weights: Weights) -> dict[int, float]:
    """Weighted sum of scores min-max scaled over each channel's own candidate list.

    A channel's weight is one number, or a weight per chunk id (chunks in different languages).
    """
    fused: dict[int, float] = {}
    for channel, (ids, scores) in results.items():
        if not len(ids):
            continue
        w = weights.get(channel, 1.0)
        lo, hi = float(scores.min()), float(scores.max())
        scaled = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
        for idx, v in zip(ids.tolist(), scaled.tolist()):
            fused[idx] = fused.get(idx, 0.0) + (w.get(idx, 0.0) if isinstance(w, dict) else w) * v
    return fused


def fuse(results: ChannelResults, params: FusionParams, weights: Weights | None = None) -> dict[int, float]:
    # A single-channel mode ranks by that channel, whatever its weight in the hybrid mix.
    if len(results) == 1:
        weights = {c: 1.0 for c in results}
    elif weights is None or params.method == "rrf":
        weights = dict(params.weights)
    if params.method == "rrf":
        return fuse_rrf(results, weights, params.rrf_k)
    return fuse_cc(results, weights)


class HybridRetriever:
    """Ranks the chunks of one stored index (files or PostgreSQL) for a query vector and query text.

    Every read for one question happens inside one `Index.read` call, i.e. on one consistent view.
    """

    def __init__(self, index: Index, mode: str = "hybrid", params: FusionParams | None = None,
                 fusion: str = "cc", model_languages: tuple[str, ...] = ("en",), lexicon_files: tuple = ()):
        self.index = index
        self.channels = CHANNELS_BY_MODE[mode]
        self.params = params or FusionParams.for_index(index, fusion)
        self.model_languages = model_languages
        self.lexicon_files = tuple(lexicon_files)

    def situation_weights(self, query_language: str, chunk_language: str) -> dict[str, float]:
        """Channel weights for one chunk language (see SITUATION_WEIGHTS)."""
        if not self.params.by_language:
            return dict(self.params.weights)
        return SITUATION_WEIGHTS[situation(query_language, chunk_language, self.model_languages)]

    def translations(self, text: str) -> str:
        """German translations of an English question's words, for the lexical channels over German
        chunks (rag.lexicon); empty when not needed or when a multilingual model does that work."""
        if ("multi" in self.model_languages or "de" not in self.index.languages
                or guess_language(text) != "en"):
            return ""
        from rag.languages import STOPWORDS_DE
        from rag.lexical import content_words
        from rag.lexicon import translate

        found = translate(content_words(text, "en"), self.lexicon_files, exact_first=True)
        return " ".join(sorted({g for gs in found.values() for g in gs} - STOPWORDS_DE))

    def _languages(self) -> list[str]:
        return sorted(self.index.languages) or ["und"]

    def rankings(self, qvec: np.ndarray | None, text: str, top_k: int = 0,
                 view: IndexView | None = None) -> ChannelResults:
        if view is None:
            return self.index.read(lambda v: self.rankings(qvec, text, top_k, v))
        out: ChannelResults = {}
        depth = min(max(self.params.depth, top_k), view.num_chunks)
        if depth == 0:
            return out
        if "dense" in self.channels and qvec is not None:
            out["dense"] = view.dense(qvec, depth)
        qlang = guess_language(text)
        possible = [self.situation_weights(qlang, lang) for lang in self._languages()]
        extra = self.translations(text)
        lexical_text = f"{text} {extra}" if extra else text
        for kind in ("bm25", "ngram"):
            used = any(w.get(kind, 1.0) > 0 for w in possible) or len(self.channels) == 1
            if kind in self.channels and kind in self.index.lexical_kinds and used:  # weight-0 channels are skipped
                out[kind] = view.lexical(kind, lexical_text, depth)
        return out

    def chunk_weights(self, view: IndexView, results: ChannelResults, text: str) -> Weights:
        """One weight per channel, or per chunk id when the corpus mixes languages."""
        qlang = guess_language(text)
        languages = self._languages()
        if len(languages) == 1 or not self.params.by_language:
            return dict(self.situation_weights(qlang, languages[0]))
        ids = sorted({i for ids, _ in results.values() for i in ids.tolist()})
        lang_of = view.chunk_languages(ids)
        table = {lang: self.situation_weights(qlang, lang) for lang in set(lang_of.values())}
        return {c: {i: table[lang][c] for i, lang in lang_of.items()} for c in ("dense", "bm25", "ngram")}

    def retrieve(self, qvec: np.ndarray | None, text: str, top_k: int) -> list[Hit]:
        return self.index.read(lambda view: self._retrieve(view, qvec, text, top_k))

    def _retrieve(self, view: IndexView, qvec: np.ndarray | None, text: str, top_k: int) -> list[Hit]:
        results = self.rankings(qvec, text, top_k, view)
        fused = fuse(results, self.params, self.chunk_weights(view, results, text))
        ranks = {c: {idx: r for r, idx in enumerate(ids.tolist(), start=1)} for c, (ids, _) in results.items()}
        best = sorted(fused, key=lambda i: (-fused[i], i))[:top_k]
        return [
            Hit(chunk_index=s.id, chunk=s.chunk, score=fused[s.id], dense=s.dense,
                ranks={c: ranks.get(c, {}).get(s.id) for c in self.channels}, sentence_vectors=s.sentence_vectors)
            for s in view.fetch(best, qvec)
        ]
