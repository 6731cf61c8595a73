"""Updating a big snapshot in seconds: an immutable base segment, a small delta and tombstones.

Rebuilding FAISS and BM25 over every chunk made one changed source cost 11 minutes at a million
chunks. Above DELTA_FROM_CHUNKS, an ingest that changes little instead writes a snapshot that
reuses the previous one's base files through hard links (never rewritten, so no copy and no
rebuild), and writes only:

    delta/      chunks.jsonl, vectors.npy, sentences.npy, bm25/, ngram/ of the chunks of sources
                added or changed since the base was built (searched exactly: the delta is small)
    tombstones.npy   base rows whose source changed or went away (never returned)

Chunk ids are rows: the base keeps rows 0..B-1, the delta follows at B, B+1, ... A question
searches both and merges: dense through the base's FAISS index with a selector that skips the
tombstones (FAISS filters during the search, so there is nothing to over-fetch) plus the delta's
exact search; each lexical channel scores base and delta and zeroes the tombstones.

BM25 across segments (SegmentedLexical): the idf of each question token is computed at question
time from the live chunks (the base's column minus its tombstoned rows, plus the delta's), as a
full rebuild would; the base's stored weights are rescaled to it and the delta stores the
term-frequency part only. The one statistic kept from the base is the mean chunk length used in
length normalisation, so scores differ from a full rebuild's only by how far the live mean has
moved. Compaction bounds that and the extra work per question: when the delta plus the
tombstones pass COMPACT_FRACTION of the base (or on `rag ingest --rebuild`, or when settings,
FAISS spec or lexical channels change), the ingest compacts everything into a new base.

A segmented snapshot is published like any other (temp folder, then one atomic swap of
`current`), so readers see the old generation or the new one, never a half-updated source, and a
killed update leaves the old generation in place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.index import Manifest
from rag.records import Chunk

DELTA_DIR = "delta"
TOMBSTONES = "tombstones.npy"
# Below this many base chunks a full rebuild takes a few seconds anyway and keeps one segment.
DELTA_FROM_CHUNKS = 50_000
# Compact (rebuild one base) once delta chunks + tombstones exceed this share of the base: it bounds
# both the BM25 statistics' drift and the extra work per question (exact search over the delta).
COMPACT_FRACTION = 0.05
# Files that belong to one snapshot and are never linked into the next.
_OWN = {"manifest.json", TOMBSTONES, DELTA_DIR, ".writer.lock"}


@dataclass(frozen=True)
class Segments:
    """Where the base ends and what it has lost: from the manifest's "segments" entry."""

    base_chunks: int
    delta_chunks: int = 0
    tombstones: int = 0

    @classmethod
    def of(cls, manifest: Manifest, total_chunks: int | None = None) -> Segments:
        seg = manifest.segments
        if not seg:
            return cls(base_chunks=total_chunks if total_chunks is not None else _count_rows(manifest))
        return cls(int(seg["base_chunks"]), int(seg["delta_chunks"]), int(seg["tombstones"]))

    def to_json(self) -> dict:
        return {"base_chunks": self.base_chunks, "delta_chunks": self.delta_chunks, "tombstones": self.tombstones}


def _count_rows(manifest: Manifest) -> int:
    return sum(len(d.chunk_ids) for d in manifest.documents.values())


def document_rows(manifest: Manifest) -> dict[str, tuple[int, int]]:
    """Each document's rows [start, stop): stored by segmented ingests, else in manifest order.

    A full build writes chunks document by document in the manifest's order, so the rows of a
    snapshot written before rows were recorded follow from the chunk counts.
    """
    out, row = {}, 0
    for source, d in manifest.documents.items():
        if d.rows is not None:
            out[source] = d.rows
        else:
            out[source] = (row, row + len(d.chunk_ids))
            row += len(d.chunk_ids)
    return out


class Stacked:
    """Rows of a base array then a delta array, addressed as one (the base is a memory map)."""

    def __init__(self, base: np.ndarray, delta: np.ndarray) -> None:
        self.base, self.delta = base, delta
        self.split = len(base)
        self.shape = (len(base) + len(delta), *base.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, slice):  # one chunk's sentence rows: always inside one segment
            start, stop, _ = key.indices(self.shape[0])
            if start >= self.split:
                return self.delta[start - self.split:stop - self.split]
            if stop <= self.split:
                return self.base[start:stop]
            return np.concatenate([self.base[start:], self.delta[:stop - self.split]])
        rows = np.asarray(key, dtype=np.int64)
        if rows.ndim == 0:
            r = int(rows)
            return self.base[r] if r < self.split else self.delta[r - self.split]
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.float32)
        low = rows < self.split
        out[low] = self.base[rows[low]]
        out[~low] = self.delta[rows[~low] - self.split]
        return out


class SegmentedLexical:
    """One BM25 channel over base + delta with the live chunks' idf: tombstoned rows score nothing.

    The base's matrix holds full BM25 weights (idf of the base when it was built); the delta's holds
    the term-frequency part only. For each question token, the live document frequency is counted
    (base column minus its tombstoned rows, plus the delta column), and both parts are scaled to
    that idf, which is what a full rebuild would compute. Only the length normalisation keeps the
    base's mean chunk length until compaction.
    """

    def __init__(self, base, delta, dead: np.ndarray) -> None:
        from rag.lexical import bm25_idf

        self.base, self.delta, self.dead = base, delta, dead
        self.kind = base.kind
        self.num_docs = base.num_docs + delta.num_docs
        self.live = self.num_docs - int(dead.sum())
        self.languages = tuple(sorted(set(base.languages) | set(delta.languages)))
        self._idf = bm25_idf
        self._df = LiveFrequencies(self)

    def _columns(self, tok: str):
        """(base rows, base weights, delta rows, delta tf parts, live df) of one token."""
        out = []
        for lex in (self.base, self.delta):
            t = lex.vocab.get(tok)
            if t is not None and t + 1 < len(lex.indptr):
                a, b = lex.indptr[t], lex.indptr[t + 1]
                out.append((lex.indices[a:b], lex.data[a:b]))
            else:
                out.append((np.zeros(0, np.int32), np.zeros(0, np.float32)))
        (b_rows, b_w), (d_rows, d_w) = out
        live_df = len(b_rows) - int(self.dead[b_rows].sum()) + len(d_rows)
        return b_rows, b_w, d_rows, d_w, live_df

    def scores(self, query: str) -> np.ndarray:
        from rag.lexical import query_tokens

        scores = np.zeros(self.num_docs, dtype=np.float32)
        split = self.base.num_docs
        for tok in query_tokens(self.kind, query, self.languages):
            b_rows, b_w, d_rows, d_w, live_df = self._columns(tok)
            if not live_df:
                continue
            idf = float(self._idf(self.live, np.array([live_df]))[0])
            if len(b_rows):
                base_idf = float(self._idf(self.base.num_docs, np.array([len(b_rows)]))[0])
                np.add.at(scores, b_rows, b_w * (idf / base_idf if base_idf else 0.0))
            if len(d_rows):
                np.add.at(scores, d_rows.astype(np.int64) + split, d_w * idf)
        scores[self.dead] = 0.0
        return scores

    def document_frequencies(self) -> LiveFrequencies:
        return self._df


class LiveFrequencies(Mapping):
    """Live chunks holding each token, counted when asked (the base's vocabulary is large)."""

    def __init__(self, lexical: SegmentedLexical) -> None:
        self.lexical = lexical

    def __getitem__(self, tok: str) -> int:
        df = self.lexical._columns(tok)[4]
        if not df:
            raise KeyError(tok)
        return df

    def __iter__(self):
        return (t for t in {**self.lexical.base.vocab, **self.lexical.delta.vocab} if t in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass
class Delta:
    """A delta segment as loaded: its chunks, vectors, sentence vectors and lexical indexes."""

    chunks: list[Chunk]
    vectors: np.ndarray
    sentence_vectors: np.ndarray | None
    lexical: dict

    @property
    def sentence_offsets(self) -> np.ndarray:
        counts = [len(c.sentences) for c in self.chunks]
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def load_delta(folder: Path, dim: int, kinds: tuple[str, ...]) -> Delta:
    """The delta segment of snapshot `folder` (empty when it has none)."""
    from rag.lexical import LexicalIndex

    d = folder / DELTA_DIR
    if not d.exists():
        return Delta([], np.zeros((0, dim), np.float32), None, {})
    with open(d / "chunks.jsonl", encoding="utf-8") as fh:
        chunks = [Chunk.from_json(json.loads(line)) for line in fh if line.strip()]
    sent = d / "sentences.npy"
    return Delta(chunks, np.load(d / "vectors.npy"), np.load(sent) if sent.exists() else None,
                 {k: LexicalIndex.load(k, d) for k in kinds if (d / k).exists()})


def load_tombstones(folder: Path) -> np.ndarray:
    path = folder / TOMBSTONES
    return np.load(path).astype(np.int64) if path.exists() else np.zeros(0, np.int64)


def dense_selector(tombstones: np.ndarray):
    """A FAISS selector that skips the tombstoned rows (kept alive with the index)."""
    import faiss

    return faiss.IDSelectorNot(faiss.IDSelectorBatch(np.ascontiguousarray(tombstones, dtype=np.int64)))


def link_base(base_folder: Path, into: Path) -> None:
    """Hard-link every file of the base segment into a new snapshot folder (copy where links fail)."""
    import shutil

    for src in base_folder.rglob("*"):
        rel = src.relative_to(base_folder)
        if rel.parts[0] in _OWN or not src.is_file():
            continue
        dst = into / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError as err:
            import errno

            if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copy2(src, dst)


def needs_compaction(base_chunks: int, delta_chunks: int, tombstones: int) -> str | None:
    """Why this update must rebuild one base instead of writing a delta (None: a delta will do)."""
    if base_chunks < DELTA_FROM_CHUNKS:
        return "small index"
    if delta_chunks + tombstones > COMPACT_FRACTION * base_chunks:
        return (f"compacting: {delta_chunks:,} changed chunks and {tombstones:,} removed ones pass "
                f"{COMPACT_FRACTION:.0%} of the {base_chunks:,} in the base")
    return None
