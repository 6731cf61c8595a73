"""The persisted index: one self-describing snapshot folder, swapped in atomically.

Layout under RAG_INDEX_DIR:
    current -> snapshots/<id>      (a symlink, replaced with os.replace: readers never see half a write)
    snapshots/<id>/manifest.json   format version, model, dimension, chunking, per-document hashes
                  chunks.jsonl     chunk records in vector order
                  vectors.npy      chunk vectors (unit norm)          faiss.index   the ANN index
                  sentences.npy    sentence vectors, chunk by chunk   bm25/ ngram/  lexical indexes
                  model.onnx, tokenizer.json   the query-time embedder
An ingest writes a whole new snapshot in a temp folder and only then moves `current`, so an
interrupted ingest leaves the previous index in use.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import IndexCorrupt, IndexIncompatible, IndexMissing
from rag.records import Chunk

FORMAT_VERSION = 1
# Bump when cleaning, splitting or sentence rules change, so old snapshots are rebuilt.
PIPELINE_VERSION = 2
FIX = "run `rag ingest --rebuild` to build it again from the documents"


@dataclass
class Snapshot:
    folder: Path
    manifest: dict
    chunks: list[Chunk]
    vectors: np.ndarray
    sentence_vectors: np.ndarray | None
    faiss_index: object
    lexical: dict = field(default_factory=dict)

    @property
    def sentence_offsets(self) -> np.ndarray:
        """Row of each chunk's first sentence in `sentence_vectors` (one extra entry at the end)."""
        if not hasattr(self, "_offsets"):
            counts = [len(c.sentences) for c in self.chunks]
            self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return self._offsets


def current_folder(index_dir: Path) -> Path | None:
    link = index_dir / "current"
    if not link.exists():
        return None
    return link.resolve()


def read_manifest(index_dir: Path) -> dict | None:
    folder = current_folder(index_dir)
    if folder is None:
        return None
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise IndexCorrupt(f"index manifest in {folder} is unreadable ({err}); {FIX}") from None


def check_compatible(manifest: dict, model: str, chunk_size: int, chunk_overlap: int) -> None:
    """Raise IndexIncompatible naming what differs between the stored index and the settings."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexIncompatible(
            f"index format {manifest.get('format_version')} is not the supported {FORMAT_VERSION}; {FIX}"
        )
    diffs = []
    if manifest.get("pipeline_version") != PIPELINE_VERSION:
        diffs.append(f"pipeline version {manifest.get('pipeline_version')} → {PIPELINE_VERSION}")
    if manifest.get("model") != model:
        diffs.append(f"model {manifest.get('model')!r} → {model!r}")
    if (manifest.get("chunk_size"), manifest.get("chunk_overlap")) != (chunk_size, chunk_overlap):
        diffs.append(
            f"chunking {manifest.get('chunk_size')}/{manifest.get('chunk_overlap')} → {chunk_size}/{chunk_overlap}"
        )
    if diffs:
        raise IndexIncompatible(f"index was built with other settings ({'; '.join(diffs)}); {FIX}")


def load_snapshot(index_dir: Path, lexical_kinds: tuple[str, ...] = ("bm25", "ngram")) -> Snapshot:
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
        lexical = {k: LexicalIndex.load(k, folder) for k in lexical_kinds}
    except Exception as err:  # any unreadable part means the same thing to the user
        raise IndexCorrupt(f"index in {folder} is damaged ({type(err).__name__}: {err}); {FIX}") from None
    snap = Snapshot(folder, manifest, chunks, vectors, sentence_vectors, index, lexical)
    n = len(chunks)
    problems = []
    if vectors.shape != (n, manifest.get("dim")):
        problems.append(f"vectors {vectors.shape} for {n} chunks")
    if index.ntotal != n:
        problems.append(f"FAISS holds {index.ntotal} vectors for {n} chunks")
    if sentence_vectors is not None and len(sentence_vectors) != int(snap.sentence_offsets[-1]):
        problems.append("sentence vectors do not match the chunks")
    for kind, lex in lexical.items():
        if lex.num_docs != n:
            problems.append(f"{kind} index holds {lex.num_docs} chunks for {n}")
    if problems:
        raise IndexCorrupt(f"index in {folder} is inconsistent ({'; '.join(problems)}); {FIX}")
    return snap


def build_faiss(vectors: np.ndarray, spec: str):
    """A FAISS inner-product index from a factory string ('Flat', 'HNSW32', 'IVF256,Flat', ...)."""
    import faiss

    dim = vectors.shape[1]
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(np.ascontiguousarray(vectors))
    if len(vectors):
        index.add(np.ascontiguousarray(vectors))
    return index


def write_snapshot(
    index_dir: Path,
    manifest: dict,
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray | None,
    faiss_index,
    lexical: dict,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write everything into a temp folder, then atomically point `current` at it."""
    import faiss

    snaps = index_dir / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    tmp = snaps / f".tmp-{stamp}"
    tmp.mkdir()
    try:
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in chunks:
                fh.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
        if sentence_vectors is not None:
            np.save(tmp / "sentences.npy", np.ascontiguousarray(sentence_vectors, dtype=np.float32))
        faiss.write_index(faiss_index, str(tmp / "faiss.index"))
        for lex in lexical.values():
            lex.save(tmp)
        for name, src in (extra_files or {}).items():
            try:
                os.link(src, tmp / name)  # unchanged model files are shared, not copied
            except OSError:
                shutil.copy2(src, tmp / name)
        manifest = {**manifest, "format_version": FORMAT_VERSION, "pipeline_version": PIPELINE_VERSION}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        final = snaps / stamp
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = index_dir / f".current-{stamp}"
    os.symlink(Path("snapshots") / stamp, link_tmp)
    os.replace(link_tmp, index_dir / "current")
    _prune(snaps, keep=final)
    return final


def _prune(snaps: Path, keep: Path, keep_last: int = 2) -> None:
    """Drop old snapshots, keeping the newest few so a process still reading one is not broken."""
    old = sorted((p for p in snaps.iterdir() if p.is_dir() and p != keep), key=lambda p: p.name)
    for p in old[:-(keep_last - 1)] if keep_last > 1 else old:
        shutil.rmtree(p, ignore_errors=True)
