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
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, TypeVar

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


@dataclass(frozen=True)
class DocEntry:
    """One document in a snapshot's manifest: what it was read as, and which chunks it became."""

    sha256: str
    title: str | None
    date: str | None
    language: str | None
    chunk_ids: list[str]
    rows: tuple[int, int] | None = None  # its rows [start, stop), recorded by segmented ingests

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DocEntry:
        rows = d.get("rows")
        return cls(d["sha256"], d.get("title"), d.get("date"), d.get("language"), d["chunk_ids"],
                   (int(rows[0]), int(rows[1])) if rows else None)

    def to_json(self) -> dict:
        out = {"sha256": self.sha256, "title": self.title, "date": self.date, "language": self.language,
               "chunk_ids": self.chunk_ids}
        return out | {"rows": list(self.rows)} if self.rows is not None else out

    def with_(self, **changes) -> DocEntry:
        return replace(self, **changes)


@dataclass(frozen=True)
class Manifest:
    """What a stored index was built with and holds: manifest.json, or PostgreSQL's `meta` row.

    Read and written only through `from_json`/`to_json`, so every default lives here: a field an
    older seedrag did not write reads as what that version did (e.g. both lexical channels, fp32).
    Fields a store does not use stay at their empty default and are not written.
    """

    model: str | None = None
    dim: int = 0
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    format_version: int | None = None
    pipeline_version: int | None = None
    sentence_vectors: bool | None = None
    ingest_precision: str = "fp32"
    lexical_kinds: tuple[str, ...] = ("bm25", "ngram")
    skipped: list[dict] = field(default_factory=list)  # rag.load.Skipped records, as JSON
    seed_stats: Mapping[str, list[int]] | None = None  # size and mtime of each file read (rag.ingest)
    embedder: Mapping[str, Any] | None = None  # the model cache entry, with its checksums (rag.model_cache)
    created: str | None = None
    # Snapshot files only:
    faiss_index: str | None = None  # the FAISS factory string built
    documents: Mapping[str, DocEntry] = field(default_factory=dict)
    segments: Mapping[str, int] | None = None  # a segmented snapshot's sizes (rag.segments.Segments)
    # PostgreSQL only:
    store: str | None = None
    lexical_fingerprint: str | None = None  # changes when tokenization changes (rag.pgstore)
    generation: int | None = None  # the last ingest's stamp: read beside the manifest, never stored in it

    @classmethod
    def from_json(cls, d: Mapping[str, Any], generation: int | None = None) -> Manifest:
        """The manifest stored as `d`; KeyError/TypeError/ValueError when it lacks what every index has."""
        known = {f.name for f in fields(cls)} - {"documents", "lexical_kinds", "dim", "generation"}
        values = {k: v for k, v in d.items() if k in known and v is not None}
        return cls(**values, dim=int(d["dim"]), generation=generation,
                   lexical_kinds=tuple(d["lexical_kinds"]) if d.get("lexical_kinds") is not None else cls.lexical_kinds,
                   documents={src: DocEntry.from_json(e) for src, e in (d.get("documents") or {}).items()})

    def to_json(self) -> dict:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "generation" or (v is None and f.default is None) or (f.name == "documents" and not v):
                continue
            out[f.name] = ({s: e.to_json() for s, e in v.items()} if f.name == "documents"
                           else list(v) if f.name == "lexical_kinds" else v)
        return out

    def with_(self, **changes) -> Manifest:
        return replace(self, **changes)

    @property
    def languages(self) -> frozenset[str]:
        """The documents' languages (snapshot files; PostgreSQL counts them from its tables)."""
        return frozenset(d.language for d in self.documents.values()) - {"und", None}


class IndexView(Protocol):
    """Reads for one question, all from the same state of the index."""

    num_chunks: int

    def dense(self, qvec: np.ndarray, k: int) -> Ranking:
        """The k chunks nearest to the unit query vector (inner product), best first."""

    def lexical(self, kind: str, text: str, k: int) -> Ranking:
        """The k chunks with the highest positive BM25 score in channel `kind` ('bm25' or 'ngram')."""

    def fetch(self, ids: list[int], qvec: np.ndarray | None) -> list[StoredChunk]:
        """The chunks with these ids, in this order."""

    def chunk_languages(self, ids: list[int]) -> dict[int, str]:
        """The language of each chunk with these ids: what per-chunk fusion weights need, without
        fetching texts and sentence vectors."""


class Index(Protocol):
    manifest: Manifest  # model, dim, chunking, pipeline version, seed_stats… (PostgreSQL: no `documents`)
    lexical_kinds: tuple[str, ...]

    @property
    def num_chunks(self) -> int: ...

    @property
    def languages(self) -> frozenset[str]: ...

    def read(self, fn: Callable[[IndexView], T]) -> T:
        """Run fn on one consistent view (retried on a lost database connection)."""

    def documents(self) -> list[DocInfo]: ...

    def document_frequencies(self, kind: str) -> Mapping[str, int]:
        """Chunks containing each token of channel `kind` (the answerer's IDF). A store whose
        lookups cost a round trip also offers `get_many(tokens) -> dict[str, int]`, one trip for
        all (rag.answer.ExtractiveAnswerer.chunks_holding uses it when present)."""


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


def stored_manifest(settings: Settings) -> Manifest | None:
    """The stored index's manifest, or None when nothing has been ingested yet (cheap: no vectors)."""
    if uses_postgres(settings):
        from rag.pgstore import read_manifest

        return read_manifest(settings)
    from rag.store import read_manifest

    return read_manifest(settings.index_dir)
