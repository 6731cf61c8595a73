"""What retrieval and answering read from a stored index, whichever store holds it.

Two stores implement `Index`: snapshot files under RAG_INDEX_DIR (`rag/store.py`, the default,
nothing to run) and PostgreSQL + pgvector (`rag/pgstore.py`, when RAG_STORE_URL is set, for
millions of chunks or several bot processes sharing one index). Retrieval asks the index to run
one function on an `IndexView`: a consistent view for one question (one snapshot folder, or one
REPEATABLE READ transaction), so a question never mixes rows from before and after an ingest
that runs at the same time. Fusion, abstention and citations are computed above this interface,
once, so both stores give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from rag.config import Settings
from rag.records import Chunk

T = TypeVar("T")
Ranking = tuple[np.ndarray, np.ndarray]  # chunk ids best first, their scores


@dataclass(frozen=True)
class DocInfo:
    """One indexed document, as `rag sources` lists it."""

    source: str
    title: str
    date: str | None
    language: str
    chunks: int


@dataclass(frozen=True)
class StoredChunk:
    """A chunk fetched for a hit: its text and metadata, its cosine to the question, its sentence vectors."""

    id: int
    chunk: Chunk
    dense: float
    sentence_vectors: np.ndarray | None


class IndexView(Protocol):
    """Reads for one question, all from the same state of the index."""

    num_chunks: int

    def dense(self, qvec: np.ndarray, k: int) -> Ranking:
        """The k chunks nearest to the unit query vector (inner product), best first."""

    def lexical(self, kind: str, text: str, k: int) -> Ranking:
        """The k chunks with the highest positive BM25 score in channel `kind` ('bm25' or 'ngram')."""

    def fetch(self, ids: list[int], qvec: np.ndarray | None) -> list[StoredChunk]:
        """The chunks with these ids, in this order."""


class Index(Protocol):
    manifest: dict  # model, dim, chunking, pipeline version, seed_stats… (no per-document table)
    lexical_kinds: tuple[str, ...]

    @property
    def num_chunks(self) -> int: ...

    @property
    def languages(self) -> frozenset[str]: ...

    def read(self, fn: Callable[[IndexView], T]) -> T:
        """Run fn on one consistent view (retried on a lost database connection)."""

    def documents(self) -> list[DocInfo]: ...

    def document_frequencies(self, kind: str) -> Mapping[str, int]:
        """Chunks containing each token of channel `kind` (the answerer's IDF)."""


def top_positive(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` best positive scores, best first; equal scores go to the lower index.

    Exact about ties at the cut too, so two stores holding the same scores return the same ids.
    """
    positive = np.flatnonzero(scores > 0)
    if len(positive) > depth:
        vals = scores[positive]
        cut = -np.partition(-vals, depth - 1)[depth - 1]
        above = positive[vals > cut]
        positive = np.concatenate([above, positive[vals == cut][: depth - len(above)]])
    return positive[np.lexsort((positive, -scores[positive]))]


# The character n-gram channel carries questions across languages and a corpus the embedding model
# does not know. In a one-language corpus the model knows, its fusion weight is 0 and, past this
# size, it would be the biggest part of the index (about five times the word channel's postings),
# so it is not built (`RAG_RETRIEVER=ngram` then finds nothing). A corpus in a language the model
# does not know (a German one under the English model) always keeps it: there it is the best channel.
NGRAM_MONOLINGUAL_LIMIT = 50_000


def lexical_kinds(languages: set[str], n_chunks: int, model_languages: tuple[str, ...] = ("en",)) -> tuple[str, ...]:
    """The lexical channels an index of `n_chunks` chunks in these languages keeps."""
    langs = set(languages) - {"und", None}
    known = "multi" in model_languages or langs <= set(model_languages)
    if len(langs) > 1 or n_chunks < NGRAM_MONOLINGUAL_LIMIT or not known:
        return ("bm25", "ngram")
    return ("bm25",)


def uses_postgres(settings: Settings) -> bool:
    return bool(settings.store_url)


def open_index(settings: Settings) -> Index:
    """The stored index the settings point at; raises IndexMissing/IndexCorrupt/StoreUnavailable."""
    if uses_postgres(settings):
        from rag.pgstore import PgIndex

        return PgIndex.open(settings)
    from rag.store import FileIndex, load_snapshot

    return FileIndex(load_snapshot(settings.index_dir))


def has_index(settings: Settings) -> bool:
    """Whether an index has been built (without reading it)."""
    if uses_postgres(settings):
        return stored_manifest(settings) is not None
    return (settings.index_dir / "current").exists()


def stored_manifest(settings: Settings) -> dict | None:
    """The stored index's manifest, or None when nothing has been ingested yet (cheap: no vectors)."""
    if uses_postgres(settings):
        from rag.pgstore import read_manifest

        return read_manifest(settings)
    from rag.store import read_manifest

    return read_manifest(settings.index_dir)
