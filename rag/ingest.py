"""Documents → chunks → vectors → snapshot, re-embedding only what changed.

Chunks and their vectors are reused for every document whose content hash is unchanged; FAISS and
the lexical indexes are rebuilt from the stored vectors (cheap next to embedding). A changed model,
chunking or pipeline version makes the old vectors meaningless, so that triggers a full rebuild.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.chunk import chunk_document, make_splitter
from rag.config import Settings
from rag.embed import ONNX_FILE, TOKENIZER_FILE
from rag.errors import IndexCorrupt, IndexIncompatible, IndexMissing, SeedsMissing
from rag.lexical import LexicalIndex
from rag.load import Skipped, load_documents
from rag.onnx_export import load_ingest_embedder
from rag.records import Chunk, SourceDoc
from rag.store import build_faiss, check_compatible, load_snapshot, write_snapshot

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    chunks_total: int = 0
    rebuilt: str | None = None
    skipped: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def seed_signature(seeds_dir: Path) -> dict[str, list[int]]:
    """Cheap change detection for `ask`: size and mtime of every candidate file."""
    from rag.load import list_sources

    out = {}
    for p in list_sources(seeds_dir):
        st = p.stat()
        out[p.relative_to(seeds_dir).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _previous(settings: Settings, rebuild: bool, report: IngestReport):
    if rebuild:
        report.rebuilt = "requested with --rebuild"
        return None
    try:
        snap = load_snapshot(settings.index_dir)
        check_compatible(snap.manifest, settings.embed_model, settings.chunk_size, settings.chunk_overlap)
        if snap.manifest.get("sentence_vectors") != settings.sentence_vectors:
            raise IndexIncompatible("sentence vectors setting changed")
        old = snap.manifest.get("ingest_precision", "fp32")
        if old != settings.ingest_precision:
            raise IndexIncompatible(f"ingest precision {old} → {settings.ingest_precision}")
        return snap
    except IndexMissing:
        return None
    except (IndexIncompatible, IndexCorrupt) as err:
        report.rebuilt = str(err).split("; run")[0]
        log.warning("rebuilding the whole index: %s", report.rebuilt)
        return None


def ingest_folder(settings: Settings, embedder=None, rebuild: bool = False, progress: bool = False) -> IngestReport:
    """Index the seeds folder into settings.index_dir, incrementally."""
    start = time.perf_counter()
    docs, skipped = load_documents(settings.seeds_dir)
    if not docs:
        raise SeedsMissing(
            f"no readable documents in {str(settings.seeds_dir)!r} "
            f"(.txt, .md, .html, .pdf){'; skipped: ' + ', '.join(s.source for s in skipped) if skipped else ''}"
        )
    report = build_index(
        docs, settings, embedder, rebuild=rebuild, progress=progress, skipped=skipped,
        seed_stats=seed_signature(settings.seeds_dir),
    )
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def build_index(
    docs: list[SourceDoc],
    settings: Settings,
    embedder=None,
    rebuild: bool = False,
    progress: bool = False,
    skipped: list[Skipped] = (),
    seed_stats: dict | None = None,
) -> IngestReport:
    start = time.perf_counter()
    report = IngestReport(skipped=[{"source": s.source, "reason": s.reason} for s in skipped])
    prev = _previous(settings, rebuild, report)
    prev_docs = prev.manifest.get("documents", {}) if prev else {}
    prev_rows = {c.id: i for i, c in enumerate(prev.chunks)} if prev else {}

    # Loaded only when something changed: a no-op ingest opens no model at all.
    model = functools.cache(
        lambda: load_ingest_embedder(settings.index_dir, settings.embed_model, embedder, settings.ingest_precision)
    )
    splitter = None
    chunks: list[Chunk] = []
    reuse: list[int | None] = []  # row in the previous snapshot, or None for a new chunk
    documents = {}
    for doc in docs:
        old = prev_docs.get(doc.source)
        if old and old["sha256"] == doc.sha256 and all(cid in prev_rows for cid in old["chunk_ids"]):
            report.unchanged += 1
            doc_chunks = [prev.chunks[prev_rows[cid]] for cid in old["chunk_ids"]]
            reuse.extend(prev_rows[cid] for cid in old["chunk_ids"])
        else:
            if old:
                report.updated += 1
            else:
                report.added += 1
            splitter = splitter or make_splitter(settings.chunk_size, settings.chunk_overlap, model()[0].token_ids)
            doc_chunks = chunk_document(doc, splitter)
            reuse.extend([None] * len(doc_chunks))
        chunks.extend(doc_chunks)
        documents[doc.source] = {
            "sha256": doc.sha256, "title": doc.title, "date": doc.date, "language": doc.language,
            "chunk_ids": [c.id for c in doc_chunks],
        }
    report.removed = len(set(prev_docs) - set(documents))
    report.chunks_total = len(chunks)

    nothing_changed = prev is not None and not (report.added or report.updated or report.removed)
    if nothing_changed:
        report.seconds = round(time.perf_counter() - start, 3)
        if seed_stats is not None and prev.manifest.get("seed_stats") != seed_stats:
            _rewrite_manifest(prev, {"seed_stats": seed_stats, "skipped": report.skipped})
        return report

    new_rows = [i for i, r in enumerate(reuse) if r is None]
    report.chunks_embedded = len(new_rows)
    embedder, onnx_dir = model()
    new_vecs = embedder.embed_batch([chunks[i].text for i in new_rows], progress=progress)
    dim = new_vecs.shape[1] if len(new_rows) else prev.vectors.shape[1]
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    for j, i in enumerate(new_rows):
        vectors[i] = new_vecs[j]
    for i, r in enumerate(reuse):
        if r is not None:
            vectors[i] = prev.vectors[r]

    sentence_vectors = None
    if settings.sentence_vectors:
        sentence_vectors = _sentence_vectors(chunks, reuse, prev, embedder, progress)

    languages = [c.language for c in chunks]
    lexical = {k: LexicalIndex.build(k, [c.text for c in chunks], languages) for k in ("bm25", "ngram")}
    manifest = {
        "model": settings.embed_model,
        "dim": int(dim),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "faiss_index": settings.faiss_index,
        "sentence_vectors": settings.sentence_vectors,
        "ingest_precision": settings.ingest_precision,
        "documents": documents,
        "skipped": report.skipped,
        "seed_stats": seed_stats,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    extra = {name: onnx_dir / name for name in (ONNX_FILE, TOKENIZER_FILE)} if onnx_dir else {}
    write_snapshot(
        settings.index_dir, manifest, chunks, vectors, sentence_vectors,
        build_faiss(vectors, settings.faiss_index), lexical, extra_files=extra,
    )
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _sentence_vectors(chunks, reuse, prev, embedder, progress) -> np.ndarray:
    offsets_prev = prev.sentence_offsets if prev is not None and prev.sentence_vectors is not None else None
    parts: list[np.ndarray | None] = []
    todo: list[str] = []
    for c, r in zip(chunks, reuse):
        if r is not None and offsets_prev is not None:
            parts.append(np.asarray(prev.sentence_vectors[offsets_prev[r]:offsets_prev[r + 1]]))
        else:
            parts.append(None)
            todo.extend(c.sentence_texts())
    fresh = embedder.embed_batch(todo, progress=progress) if todo else None
    out, k = [], 0
    for c, part in zip(chunks, parts):
        if part is None:
            n = len(c.sentences)
            part = fresh[k:k + n]
            k += n
        out.append(part)
    dim = out[0].shape[1] if out and out[0].ndim == 2 and out[0].shape[1] else (fresh.shape[1] if fresh is not None else 384)
    return np.concatenate([p.reshape(-1, dim) for p in out]) if out else np.zeros((0, dim), np.float32)


def _rewrite_manifest(snap, changes: dict) -> None:
    """Update bookkeeping fields in place (atomic file replace); vectors are untouched."""
    import json
    import os

    manifest = {**snap.manifest, **changes}
    tmp = snap.folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, snap.folder / "manifest.json")
