"""The persisted index: one self-describing snapshot folder, swapped in atomically.

Layout under RAG_INDEX_DIR:
    current -> snapshots/<id>      (a symlink, replaced with os.replace: readers never see half a write)
    snapshots/<id>/manifest.json   format version, model, dimension, chunking, per-document hashes
                  chunks.jsonl     chunk records in vector order
                  vectors.npy      chunk vectors (unit norm)          faiss.index   the ANN index
                  sentences.npy    sentence vectors, chunk by chunk   bm25/ ngram/  lexical indexes
                  delta/, tombstones.npy       above 50,000 chunks, what changed since the base
                                               was built (rag/segments.py; format 2)
An ingest writes a whole new snapshot in a temp folder and only then moves `current`, so an
interrupted ingest leaves the previous index in use. A big index that changed a little reuses
the previous snapshot's files through hard links and writes only a delta (rag/segments.py).

One writer at a time: an ingest holds an flock on `ingest.lock` in the index folder (a second
one gets IngestBusy at once), and each temp folder holds its own lock while it is written, so
pruning removes only temp folders whose writer is gone, never one still being filled. The locks
are released by the kernel when a process dies, so a killed ingest never blocks the next one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import ConfigError, IndexCorrupt, IndexIncompatible, IndexMissing, IngestBusy, IngestFailed
from rag.index import Manifest
from rag.records import Chunk

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # a snapshot of one segment, as every version has written
SEGMENTED_FORMAT = 2  # base + delta + tombstones (rag/segments.py): older versions refuse it
# Bump when cleaning, splitting or sentence rules change, so old snapshots are rebuilt.
PIPELINE_VERSION = 9
FIX = "run `rag ingest --rebuild` to build it again from the documents"
LOCK_FILE = "ingest.lock"
_WRITER_LOCK = ".writer.lock"
_ABANDONED_AFTER_S = 60  # a temp folder without a writer lock this old was left by a crash


@dataclass
class Snapshot:
    folder: Path
    manifest: Manifest
    chunks: list[Chunk]
    vectors: np.ndarray
    sentence_vectors: np.ndarray | None
    faiss_index: object
    lexical: dict = field(default_factory=dict)
    # Segmented snapshots (rag/segments.py): rows >= base_chunks are the delta's, searched exactly.
    base_chunks: int | None = None
    tombstones: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    delta_index: object = None
    _selector: object = None

    @property
    def live_chunks(self) -> int:
        return len(self.chunks) - len(self.tombstones)

    @property
    def sentence_offsets(self) -> np.ndarray:
        """Row of each chunk's first sentence in `sentence_vectors` (one extra entry at the end)."""
        if not hasattr(self, "_offsets"):
            counts = [len(c.sentences) for c in self.chunks]
            self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return self._offsets


class FileIndex:
    """The `rag.index.Index` interface over one loaded snapshot.

    A snapshot never changes once written (an ingest writes a new one), so it is its own
    consistent view: `read` just calls the function.
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.manifest = snapshot.manifest
        self.lexical_kinds = tuple(snapshot.lexical)
        self.num_chunks = snapshot.live_chunks

    @property
    def languages(self) -> frozenset[str]:
        return self.manifest.languages

    def read(self, fn):
        return fn(self)

    def dense(self, qvec: np.ndarray, k: int):
        snap = self.snapshot
        index, q = snap.faiss_index, qvec.reshape(1, -1).astype(np.float32)
        scores, ids = index.search(q, k, params=search_params(index, k, snap._selector))
        keep = ids[0] >= 0
        ids, scores = ids[0][keep].astype(np.int64), scores[0][keep]
        if snap.delta_index is None or not snap.delta_index.ntotal:
            return ids, scores
        d_scores, d_ids = snap.delta_index.search(q, min(k, snap.delta_index.ntotal))
        ids = np.concatenate([ids, d_ids[0].astype(np.int64) + snap.base_chunks])
        scores = np.concatenate([scores, d_scores[0]])
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order]

    def lexical(self, kind: str, text: str, k: int):
        from rag.index import top_positive

        scores = self.snapshot.lexical[kind].scores(text)
        ids = top_positive(scores, k)
        return ids, scores[ids]

    def fetch(self, ids: list[int], qvec: np.ndarray | None):
        from rag.index import StoredChunk

        snap = self.snapshot
        rows = np.asarray(ids, dtype=np.int64)
        dense = np.asarray(snap.vectors[rows]) @ qvec if qvec is not None and len(rows) else np.zeros(len(rows))
        sv, offsets = snap.sentence_vectors, snap.sentence_offsets if snap.sentence_vectors is not None else None
        return [
            StoredChunk(i, snap.chunks[i], float(d),
                        np.asarray(sv[offsets[i]:offsets[i + 1]]) if sv is not None else None)
            for i, d in zip(rows.tolist(), np.asarray(dense).tolist())
        ]

    def chunk_languages(self, ids: list[int]) -> dict[int, str]:
        chunks = self.snapshot.chunks
        return {i: chunks[i].language for i in ids}

    def documents(self):
        from rag.index import DocInfo

        return [
            DocInfo(source=src, title=d.title, date=d.date, language=d.language, chunks=len(d.chunk_ids))
            for src, d in sorted(self.manifest.documents.items())
        ]

    def document_frequencies(self, kind: str):
        return self.snapshot.lexical[kind].document_frequencies() if kind in self.snapshot.lexical else {}


def current_folder(index_dir: Path) -> Path | None:
    link = index_dir / "current"
    if not link.exists():
        return None
    return link.resolve()


def read_manifest(index_dir: Path) -> Manifest | None:
    folder = current_folder(index_dir)
    if folder is None:
        return None
    try:
        return Manifest.from_json(json.loads((folder / "manifest.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        why = f"no {err} entry" if isinstance(err, KeyError) else err
        raise IndexCorrupt(f"index manifest in {folder} is unreadable ({why})", FIX) from None


def check_compatible(manifest: Manifest, model: str, chunk_size: int, chunk_overlap: int) -> None:
    """Raise IndexIncompatible naming what differs between the stored index and the settings."""
    if manifest.format_version not in (FORMAT_VERSION, SEGMENTED_FORMAT):
        raise IndexIncompatible(
            f"index format {manifest.format_version} is not the supported {FORMAT_VERSION}", FIX
        )
    diffs = []
    if manifest.pipeline_version != PIPELINE_VERSION:
        diffs.append(f"pipeline version {manifest.pipeline_version} → {PIPELINE_VERSION}")
    if manifest.model != model:
        diffs.append(f"model {manifest.model!r} → {model!r}")
    if (manifest.chunk_size, manifest.chunk_overlap) != (chunk_size, chunk_overlap):
        diffs.append(
            f"chunking {manifest.chunk_size}/{manifest.chunk_overlap} → {chunk_size}/{chunk_overlap}"
        )
    if diffs:
        raise IndexIncompatible(f"index was built with other settings ({'; '.join(diffs)})", FIX)


def rebuild_reason(manifest: Manifest, settings) -> str | None:
    """Why an index built as `manifest` describes cannot be updated incrementally (None: it can).

    Ingest rebuilds for any of these; the engine re-indexes before answering for the same ones, so
    an upgrade that changes the pipeline version never leaves questions failing until a manual ingest.
    """
    try:
        check_compatible(manifest, settings.embed_model, settings.chunk_size, settings.chunk_overlap)
    except IndexIncompatible as err:
        return err.reason
    if manifest.sentence_vectors != settings.sentence_vectors:
        return "sentence vectors setting changed"
    old = manifest.ingest_precision
    if old != settings.ingest_precision:
        return f"ingest precision {old} → {settings.ingest_precision}"
    return None


def load_snapshot(index_dir: Path, lexical_kinds: tuple[str, ...] | None = None) -> Snapshot:
    """Load the current snapshot; every failure becomes IndexMissing or IndexCorrupt with the fix."""
    import faiss

    from rag.lexical import LexicalIndex

    folder = current_folder(index_dir)
    if folder is None:
        raise IndexMissing(f"no index in {index_dir}; run `rag ingest` to build one")
    manifest = read_manifest(index_dir)
    try:
        with open(folder / "chunks.jsonl", encoding="utf-8") as fh:
            chunks = [Chunk.from_json(json.loads(line)) for line in fh if line.strip()]
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        sent_path = folder / "sentences.npy"
        sentence_vectors = np.load(sent_path, mmap_mode="r") if sent_path.exists() else None
        index = faiss.read_index(str(folder / "faiss.index"))
        kinds = lexical_kinds if lexical_kinds is not None else manifest.lexical_kinds
        lexical = {k: LexicalIndex.load(k, folder) for k in kinds}
        snap = Snapshot(folder, manifest, chunks, vectors, sentence_vectors, index, lexical)
        if manifest.segments:
            _attach_delta(snap, kinds)
    except Exception as err:  # any unreadable part means the same thing to the user
        raise IndexCorrupt(f"index in {folder} is damaged ({type(err).__name__}: {err})", FIX) from None
    n = len(snap.chunks)
    base = snap.base_chunks if snap.base_chunks is not None else n
    problems = []
    if snap.vectors.shape != (n, manifest.dim):
        problems.append(f"vectors {snap.vectors.shape} for {n} chunks")
    if index.ntotal != base:
        problems.append(f"FAISS holds {index.ntotal} vectors for {base} chunks")
    if len(snap.tombstones) and (snap.tombstones.min() < 0 or snap.tombstones.max() >= base):
        problems.append("tombstones outside the base segment")
    if snap.sentence_vectors is not None and len(snap.sentence_vectors) != int(snap.sentence_offsets[-1]):
        problems.append("sentence vectors do not match the chunks")
    for kind, lex in snap.lexical.items():
        if lex.num_docs != n:
            problems.append(f"{kind} index holds {lex.num_docs} chunks for {n}")
    if problems:
        raise IndexCorrupt(f"index in {folder} is inconsistent ({'; '.join(problems)})", FIX)
    return snap


def _attach_delta(snap: Snapshot, kinds: tuple[str, ...]) -> None:
    """Add a segmented snapshot's delta and tombstones (rag/segments.py) to its loaded base."""
    import faiss

    from rag.segments import Segments, SegmentedLexical, Stacked, dense_selector, load_delta, load_tombstones

    seg = Segments.of(snap.manifest)
    if len(snap.chunks) != seg.base_chunks:
        raise ValueError(f"base holds {len(snap.chunks)} chunks, the manifest says {seg.base_chunks}")
    delta = load_delta(snap.folder, snap.manifest.dim, kinds)
    snap.base_chunks = seg.base_chunks
    snap.tombstones = load_tombstones(snap.folder)
    snap.chunks = snap.chunks + delta.chunks
    snap.vectors = Stacked(snap.vectors, delta.vectors)
    if snap.sentence_vectors is not None:
        snap.sentence_vectors = Stacked(snap.sentence_vectors, delta.sentence_vectors
                                        if delta.sentence_vectors is not None else snap.sentence_vectors[:0])
    dead = np.zeros(len(snap.chunks), dtype=bool)
    dead[snap.tombstones] = True
    snap.lexical = {k: SegmentedLexical(lex, delta.lexical[k], dead) for k, lex in snap.lexical.items()}
    snap.delta_index = faiss.IndexFlatIP(delta.vectors.shape[1])
    if len(delta.vectors):
        snap.delta_index.add(np.ascontiguousarray(delta.vectors, dtype=np.float32))
    if len(snap.tombstones):
        snap._selector = dense_selector(snap.tombstones)


def write_error(err: OSError, index_dir: Path) -> IngestFailed:
    """An OSError met while writing the index, as one line that says what to do."""
    where = str(index_dir)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free some disk space (or set RAG_INDEX_DIR to a folder on another disk) and run `rag ingest` again"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make it writable, or set RAG_INDEX_DIR to a folder you can write"
    elif err.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = "RAG_INDEX_DIR must name a folder (not a file); set it to a folder you can write"
    else:
        fix = "set RAG_INDEX_DIR to a folder you can write"
    return IngestFailed(
        f"could not write the index in {where} ({err.strerror or err}); {fix}. The previous index, if any, is unchanged"
    )


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)


@contextlib.contextmanager
def ingest_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index folder's writer lock, or raise IngestBusy at once if another ingest has it."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = _open_lock(index_dir / LOCK_FILE)
    except OSError as err:
        raise write_error(err, index_dir) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            raise IngestBusy(
                f"ingest already running on {index_dir}" + (f" (process {holder})" if holder.isdigit() else "")
                + "; wait for it to finish, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


# RAG_FAISS_INDEX=auto (the default): exact search while it is fast, HNSW above this many chunks.
# Measured with `python -m evals scale` (README): one question's exact search took 14 ms at 100,000
# chunks on 2 cores and grows linearly (144 ms at 1,000,000); HNSW32 at HNSW_EF_SEARCH kept dense
# recall@10 at 0.97 of exact search at 1,000,000 chunks in about 3 ms. HNSW needs no training, so it works from any size; its cost
# is build time (a quarter more than Flat's whole load at 100,000 chunks), paid by every ingest.
FAISS_AUTO_CHUNKS = 50_000
FAISS_SCALE_SPEC = "HNSW32"
HNSW_EF_SEARCH = 1024  # search beam (raised to k when more are asked for); at 1M synthetic chunks
# dense recall@10 was 0.77 at 128, 0.95 at 512, 0.96 at 1024 (3 ms a question)
IVF_NPROBE = 16  # lists searched when RAG_FAISS_INDEX names an IVF index (FAISS's default of 1 misses many)


def resolve_faiss_spec(spec: str, n_chunks: int) -> str:
    """The factory string to build: `auto` becomes Flat below FAISS_AUTO_CHUNKS, else FAISS_SCALE_SPEC."""
    if spec != "auto":
        return spec
    return "Flat" if n_chunks < FAISS_AUTO_CHUNKS else FAISS_SCALE_SPEC


def search_params(index, k: int, selector=None):
    """Per-search parameters (None when there are none to set); safe across threads.

    `selector` (a FAISS IDSelector) leaves out rows during the search: a segmented snapshot's tombstones.
    """
    import faiss

    inner = faiss.downcast_index(index)
    extra = {"sel": selector} if selector is not None else {}
    if isinstance(inner, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k), **extra)
    if isinstance(inner, faiss.IndexIVF):
        return faiss.SearchParametersIVF(nprobe=max(IVF_NPROBE, 1), **extra)
    return faiss.SearchParameters(**extra) if extra else None


def check_faiss_spec(spec: str, dim: int) -> None:
    """ConfigError naming RAG_FAISS_INDEX when FAISS cannot build `spec` for `dim`-dimensional vectors."""
    import faiss

    if spec == "auto":
        return
    try:
        faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        raise ConfigError(
            f"RAG_FAISS_INDEX={spec!r} is not a FAISS index for {dim}-dimensional vectors ({_faiss_reason(err)}); "
            "use a factory string such as Flat, HNSW32 or IVF1024,Flat"
        ) from None


def _faiss_reason(err: Exception) -> str:
    """The message of a FAISS error without its C++ function and source location."""
    text = " ".join(str(err).split())
    m = re.search(r" at \S+:\d+: (.*)$", text)
    reason = (m.group(1) if m else text).removeprefix("Error: ")
    return reason if len(reason) <= 160 else reason[:159] + "…"


def build_faiss(vectors: np.ndarray, spec: str) -> tuple[object, str]:
    """A FAISS inner-product index from a factory string ('auto', 'Flat', 'HNSW32', 'IVF256,Flat', ...).

    Returns the index and the spec actually used: an index that must be trained (IVF, PQ) on more
    vectors than the corpus has falls back to exact search ('Flat'), with a warning, until it grows.
    """
    import faiss

    dim = vectors.shape[1]
    spec = resolve_faiss_spec(spec, len(vectors))
    check_faiss_spec(spec, dim)
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        try:
            index.train(np.ascontiguousarray(vectors))
        except RuntimeError as err:
            log.warning("RAG_FAISS_INDEX=%s cannot be trained on %d chunks (%s); using Flat (exact search) "
                        "until the corpus is large enough", spec, len(vectors), _faiss_reason(err))
            spec = "Flat"
            index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors))
    return index, spec


class RowWriter:
    """A float32 .npy file of known shape, written block by block: the array is never in memory whole."""

    def __init__(self, path: Path, rows: int, dim: int) -> None:
        self.path, self.rows, self.dim, self.written = path, rows, dim, 0
        self._fh = open(path, "wb")
        np.lib.format.write_array_header_1_0(
            self._fh, {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                       "shape": (rows, dim)})

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype="<f4").reshape(-1, self.dim)
        self._fh.write(block.tobytes())
        self.written += len(block)

    def close(self) -> None:
        self._fh.close()
        if self.written != self.rows:
            raise RuntimeError(f"{self.path.name}: {self.written} rows written for {self.rows}")


class SnapshotWriter:
    """A new snapshot, written part by part into a temp folder that holds its writer lock.

    Parts too big to keep in memory until the end (sentence vectors, lexical indexes) are saved as
    soon as they are ready; `commit` writes the rest, renames the folder into place and points
    `current` at it. Leaving the `with` block without a commit removes the folder, so `current`
    still names the previous snapshot. Any OSError (disk full, read-only, not a folder) becomes
    IngestFailed with the fix.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
        self.folder = index_dir / "snapshots" / f".tmp-{self.stamp}"
        self._lock: int | None = None
        self._committed: Path | None = None

    def __enter__(self) -> SnapshotWriter:
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            self.folder.mkdir()
            self._lock = _open_lock(self.folder / _WRITER_LOCK)
            fcntl.flock(self._lock, fcntl.LOCK_EX)  # marks the folder as in use until we are done (or dead)
        except OSError as err:
            self._cleanup()
            raise write_error(err, self.index_dir) from None
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._cleanup()
        if isinstance(exc, OSError):
            raise write_error(exc, self.index_dir) from None

    def _cleanup(self) -> None:
        if self._committed is None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def rows(self, name: str, rows: int, dim: int) -> RowWriter:
        (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
        return RowWriter(self.folder / name, rows, dim)

    def save_lexical(self, lexical) -> None:
        lexical.save(self.folder)

    def commit(self, manifest: Manifest, chunks: list[Chunk], vectors: np.ndarray, faiss_index) -> Path:
        import faiss

        tmp = self.folder
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
        _save_npy(tmp / "vectors.npy", vectors)
        try:
            faiss.write_index(faiss_index, str(tmp / "faiss.index"))
        except RuntimeError as err:  # FAISS reports I/O errors (disk full) as RuntimeError
            raise OSError(errno.ENOSPC if "space" in str(err).lower() else errno.EIO,
                          f"FAISS could not write its index: {_faiss_reason(err)}") from None
        return self._publish(manifest.with_(format_version=FORMAT_VERSION))

    def commit_delta(self, manifest: Manifest, base_folder: Path, chunks: list[Chunk], vectors: np.ndarray,
                     tombstones: np.ndarray, lexical: dict) -> Path:
        """Publish a segmented snapshot: the base's files linked from `base_folder`, plus this delta.

        The delta's sentence vectors, if any, were written with `rows("delta/sentences.npy", ...)`.
        """
        from rag.segments import DELTA_DIR, TOMBSTONES, link_base

        tmp = self.folder
        link_base(base_folder, tmp)
        delta = tmp / DELTA_DIR
        delta.mkdir(exist_ok=True)
        with open(delta / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
        _save_npy(delta / "vectors.npy", vectors)
        for lex in lexical.values():
            lex.save(delta)
        np.save(tmp / TOMBSTONES, np.asarray(tombstones, dtype=np.int64))
        return self._publish(manifest.with_(format_version=SEGMENTED_FORMAT))

    def _publish(self, manifest: Manifest) -> Path:
        """Write the manifest last, move the folder into place and point `current` at it."""
        tmp = self.folder
        manifest = manifest.with_(pipeline_version=PIPELINE_VERSION)
        # Indented for people while small; a million chunk ids are written compact (twice as fast).
        indent = 1 if len(manifest.documents) <= 2000 else None
        (tmp / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=indent, ensure_ascii=False),
                                           encoding="utf-8")
        (tmp / _WRITER_LOCK).unlink()
        final = tmp.parent / self.stamp
        os.rename(tmp, final)
        self._committed = final
        link_tmp = self.index_dir / f".current-{self.stamp}"
        os.symlink(Path("snapshots") / self.stamp, link_tmp)
        os.replace(link_tmp, self.index_dir / "current")
        _prune(self.index_dir, keep=final)
        return final


def write_snapshot(
    index_dir: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray | None,
    faiss_index,
    lexical: dict,
) -> Path:
    """Write a whole snapshot from arrays in memory (SnapshotWriter does it part by part)."""
    with SnapshotWriter(index_dir) as writer:
        if sentence_vectors is not None:
            _save_npy(writer.folder / "sentences.npy", sentence_vectors)
        for lex in lexical.values():
            writer.save_lexical(lex)
        return writer.commit(manifest, chunks, vectors, faiss_index)


def _save_npy(path: Path, array: np.ndarray) -> None:
    try:
        np.save(path, np.ascontiguousarray(array, dtype=np.float32))
    except OSError as err:
        if err.errno is None:  # numpy reports a short write ("N requested and M written") without errno
            raise OSError(errno.ENOSPC, f"{path.name} was cut short: {err}") from None
        raise


def _abandoned(tmp: Path) -> bool:
    """True when no live process is writing this temp folder (its writer lock is free)."""
    try:
        fd = os.open(tmp / _WRITER_LOCK, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:  # a crash before the lock existed, or a writer that started just now
        try:
            return time.time() - tmp.stat().st_mtime > _ABANDONED_AFTER_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _prune(index_dir: Path, keep: Path, keep_last: int = 2) -> None:
    """Drop old snapshots, keeping the newest few so a process still reading one is not broken.

    Temp folders are removed only when abandoned: one a live ingest is still writing is left alone.
    """
    snaps = index_dir / "snapshots"
    try:
        entries = [p for p in snaps.iterdir() if p.is_dir() and p != keep]
    except OSError:
        return
    done = sorted((p for p in entries if not p.name.startswith(".tmp-")), key=lambda p: p.name)
    for p in done[:-(keep_last - 1)] if keep_last > 1 else done:
        shutil.rmtree(p, ignore_errors=True)
    for p in entries:
        if p.name.startswith(".tmp-") and _abandoned(p):
            log.info("removing %s, left by an interrupted ingest", p)
            shutil.rmtree(p, ignore_errors=True)
    for link in index_dir.glob(".current-*"):  # a crash between creating and moving the new link
        with contextlib.suppress(OSError):
            if time.time() - link.lstat().st_mtime > _ABANDONED_AFTER_S:
                link.unlink()
