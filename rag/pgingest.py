"""Documents → chunks → vectors → PostgreSQL, touching only the documents that changed.

Unlike the snapshot files, nothing is rewritten for unchanged documents: their rows stay, and an
update deletes and re-inserts only the changed sources' rows, in one transaction with the removals.
Documents are chunked and embedded in batches and written as they go, so a large first ingest
never holds every vector in memory. A changed model, chunking, pipeline or tokenizer makes the old
rows meaningless, so that builds a fresh schema and swaps it in.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from rag.chunk import chunk_document, make_splitter
from rag.config import Settings
from rag.errors import IndexIncompatible
from rag.records import SourceDoc

log = logging.getLogger(__name__)

BATCH_CHUNKS = 4096  # chunks embedded and written per step of a large ingest


def manifest_for(settings: Settings, dim: int, seed_stats: dict | None, skipped: list, export=None) -> dict:
    from rag.pgstore import CHANNELS, lexical_fingerprint
    from rag.store import FORMAT_VERSION, PIPELINE_VERSION

    return {
        "store": "postgresql",
        "format_version": FORMAT_VERSION,
        "pipeline_version": PIPELINE_VERSION,
        "model": settings.embed_model,
        "dim": int(dim),
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "sentence_vectors": settings.sentence_vectors,
        "ingest_precision": settings.ingest_precision,
        "lexical_kinds": list(CHANNELS),
        "lexical_fingerprint": lexical_fingerprint(),
        "seed_stats": seed_stats,
        "skipped": skipped,
        "embedder": export.record() if export else None,  # the model cache entry, with its checksums
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _rebuild_reason(settings: Settings, rebuild: bool) -> tuple[dict | None, str | None]:
    """The stored manifest, and why everything must be rebuilt (None: an incremental update will do)."""
    from rag.pgstore import lexical_fingerprint, read_manifest
    from rag.store import check_compatible

    if rebuild:
        return None, "requested with --rebuild"
    try:
        manifest = read_manifest(settings)
        if manifest is None:
            return None, None
        check_compatible(manifest, settings.embed_model, settings.chunk_size, settings.chunk_overlap)
        if manifest.get("sentence_vectors") != settings.sentence_vectors:
            raise IndexIncompatible("sentence vectors setting changed")
        if manifest.get("ingest_precision", "fp32") != settings.ingest_precision:
            raise IndexIncompatible(f"ingest precision {manifest.get('ingest_precision')} → {settings.ingest_precision}")
        if manifest.get("lexical_fingerprint") != lexical_fingerprint():
            raise IndexIncompatible("tokenization changed")
        return manifest, None
    except IndexIncompatible as err:
        reason = str(err).split("; run")[0]
        log.warning("rebuilding the whole PostgreSQL index: %s", reason)
        return None, reason


def ingest_into_postgres(docs: list[SourceDoc], settings: Settings, embedder=None, rebuild: bool = False,
                         progress: bool = False, skipped=(), seed_stats: dict | None = None):
    from rag.ingest import IngestReport
    from rag.model_cache import ensure_export, load_ingest_embedder
    from rag.pgstore import PgWriter, stored_sources

    start = time.perf_counter()
    report = IngestReport(skipped=[{"source": s.source, "reason": s.reason} for s in skipped])
    manifest, reason = _rebuild_reason(settings, rebuild)
    fresh = manifest is None
    report.rebuilt = reason
    previous = {} if fresh else stored_sources(settings)
    changed = [d for d in docs if previous.get(d.source) != d.sha256]
    report.updated = sum(1 for d in changed if d.source in previous)
    report.added = len(changed) - report.updated
    report.unchanged = len(docs) - len(changed)
    removed = sorted(set(previous) - {d.source for d in docs})
    report.removed = len(removed)

    export = None
    if not fresh and not changed and not removed:
        # Opens no model, but checks (and if damaged, repairs) the export the questions will use.
        export = ensure_export(settings.model_cache, settings.embed_model, embedder)
        report.model_export = export.describe() if export else None
        if manifest.get("seed_stats") != seed_stats:
            with PgWriter.begin(settings, int(manifest["dim"]), fresh=False) as w:
                w.set_seed_stats(seed_stats, report.skipped)
                w.conn.commit()
        from rag.pgstore import PgIndex

        report.chunks_total = PgIndex(settings, manifest).read(lambda view: view.num_chunks)
        report.seconds = round(time.perf_counter() - start, 3)
        return report

    writer = None
    try:
        if changed:
            emb, export = load_ingest_embedder(settings.model_cache, settings.embed_model, embedder,
                                               settings.ingest_precision)
            report.model_export = export.describe() if export else "no ONNX export: embedded with sentence-transformers"
            splitter = make_splitter(settings.chunk_size, settings.chunk_overlap, emb.token_ids)
        for batch in _batches(changed):
            chunks = [c for d in batch for c in chunk_document(d, splitter)]
            vectors = emb.embed_batch([c.text for c in chunks], progress=progress)
            if writer is None:
                writer = PgWriter.begin(settings, vectors.shape[1] if len(chunks) else emb.dim, fresh=fresh)
                writer.delete_sources([d.source for d in changed if d.source in previous] + removed)
            writer.add([_doc_row(d) for d in batch], chunks, vectors, _sentence_vectors(chunks, emb, settings))
            report.chunks_embedded += len(chunks)
        if writer is None:  # only removals
            writer = PgWriter.begin(settings, int(manifest["dim"]), fresh=False)
            writer.delete_sources(removed)
        if export is None:  # only removals: the manifest still names the export questions use
            export = ensure_export(settings.model_cache, settings.embed_model, embedder)
        report.chunks_total = writer.commit(manifest_for(settings, writer.dim, seed_stats, report.skipped, export))
    finally:
        if writer is not None:
            writer.__exit__(None, None, None)
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _batches(docs: list[SourceDoc], target: int = BATCH_CHUNKS * 600):
    """Documents grouped to roughly `target` characters (about BATCH_CHUNKS chunks) per batch."""
    batch, size = [], 0
    for d in docs:
        batch.append(d)
        size += len(d.text)
        if size >= target:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _doc_row(d: SourceDoc) -> dict:
    return {"source": d.source, "sha256": d.sha256, "title": d.title, "date": d.date, "language": d.language}


def _sentence_vectors(chunks, emb, settings: Settings) -> list[np.ndarray | None]:
    if not settings.sentence_vectors:
        return [None] * len(chunks)
    texts = [t for c in chunks for t in c.sentence_texts()]
    vecs = emb.embed_batch(texts) if texts else np.zeros((0, 1), np.float32)
    out, k = [], 0
    for c in chunks:
        n = len(c.sentences)
        out.append(vecs[k:k + n])
        k += n
    return out
