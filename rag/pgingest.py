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
from collections.abc import Iterable

import numpy as np

from rag.chunk import chunk_document, make_splitter
from rag.config import Settings
from rag.errors import IndexIncompatible, IngestFailed
from rag.index import DocEntry, Manifest
from rag.records import Chunk, SourceDoc

log = logging.getLogger(__name__)

BATCH_CHARS = 2_500_000  # document text chunked, embedded and written per step (about 4,000 chunks)


def manifest_for(settings: Settings, dim: int, seed_stats: dict | None, skipped: list, export=None) -> Manifest:
    from rag.pgstore import CHANNELS, lexical_fingerprint
    from rag.store import FORMAT_VERSION, PIPELINE_VERSION

    return Manifest(
        store="postgresql",
        format_version=FORMAT_VERSION,
        pipeline_version=PIPELINE_VERSION,
        model=settings.embed_model,
        dim=int(dim),
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        sentence_vectors=settings.sentence_vectors,
        ingest_precision=settings.ingest_precision,
        lexical_kinds=tuple(CHANNELS),
        lexical_fingerprint=lexical_fingerprint(),
        seed_stats=seed_stats,
        skipped=skipped,
        embedder=export.record() if export else None,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )


def _rebuild_reason(settings: Settings, rebuild: bool) -> tuple[Manifest | None, str | None]:
    """The stored manifest, and why everything must be rebuilt (None: an incremental update will do)."""
    from rag.pgstore import lexical_fingerprint, read_manifest
    from rag.store import rebuild_reason

    if rebuild:
        return None, "requested with --rebuild"
    try:
        manifest = read_manifest(settings)
    except IndexIncompatible as err:  # an older schema version
        manifest, reason = None, err.reason
    else:
        if manifest is None:
            return None, None
        reason = rebuild_reason(manifest, settings)  # the same checks as the file store's
        if reason is None and manifest.lexical_fingerprint != lexical_fingerprint():
            reason = "tokenization changed"
        if reason is None:
            return manifest, None
    log.warning("rebuilding the whole PostgreSQL index: %s", reason)
    return None, reason


def ingest_into_postgres(docs: Iterable[SourceDoc], settings: Settings, embedder=None, rebuild: bool = False,
                         progress: bool = False, skipped=(), seed_stats: dict | None = None):
    """Index `docs` (consumed one at a time) into the PostgreSQL index; one ingest per schema at once.

    `skipped` and `seed_stats` are read after `docs` is exhausted, so a lazy reader may fill them.
    """
    import psycopg

    from rag.ingest import IngestReport
    from rag.pgstore import Database, redact

    start = time.perf_counter()
    report = IngestReport()
    try:
        _ingest(docs, settings, embedder, rebuild, progress, skipped, seed_stats, report)
    except psycopg.Error as err:  # nothing was committed: the transaction rolled back
        db = Database(settings)
        what = redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, db.url)
        retry = ("run `rag ingest` again once the server is back" if isinstance(err, psycopg.OperationalError)
                 else "please report this with the message")
        raise IngestFailed(f"the PostgreSQL index at {db.where} failed during the ingest ({what}); it was "
                           f"rolled back and is unchanged; {retry}") from None
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _ingest(docs, settings: Settings, embedder, rebuild: bool, progress: bool, skipped, seed_stats, report) -> None:
    from rag.ingest import finish_reading, unchanged
    from rag.model_cache import ensure_export
    from rag.pgstore import PgIndex, PgWriter, ingest_lock, stored_sources

    with ingest_lock(settings):
        manifest, report.rebuilt = _rebuild_reason(settings, rebuild)
        fresh = manifest is None
        previous = {} if fresh else stored_sources(settings)
        ngram_present = fresh or "ngram" in manifest.lexical_kinds
        step = _Step(settings, embedder, fresh, previous, report, progress, ngram_present)
        seen: set[str] = set()
        try:
            batch, size = [], 0
            for doc in docs:
                seen.add(doc.source)
                old = previous.get(doc.source)
                if old == doc.sha256:
                    report.unchanged += 1
                    continue
                report.added += old is None
                report.updated += old is not None
                batch.append(doc)
                size += len(doc.text)
                if size >= BATCH_CHARS:
                    step.write(batch)
                    batch, size = [], 0
            if batch:
                step.write(batch)
            seed_stats = finish_reading(report, settings, bool(seen), skipped, seed_stats)
            removed = sorted(set(previous) - seen)
            report.removed = len(removed)
            if step.writer is None and not removed:  # nothing changed (a fresh index always has documents)
                if unchanged(report, settings, embedder, manifest, seed_stats):
                    with PgWriter.begin(settings, manifest.dim, fresh=False) as w:
                        w.set_seed_stats(seed_stats, report.skipped_json())
                        w.conn.commit()
                index = PgIndex(settings, manifest)
                try:
                    report.chunks_total = index.read(lambda view: view.num_chunks)
                finally:
                    index.close()
            else:
                writer = step.writer or PgWriter.begin(settings, manifest.dim, fresh=False,
                                                       ngram_present=ngram_present)
                step.writer = writer
                writer.delete_sources(removed)
                export = step.export or ensure_export(settings.model_cache, settings.embed_model, embedder)
                report.chunks_total = writer.commit(
                    manifest_for(settings, writer.dim, seed_stats, report.skipped_json(), export))
        finally:
            if step.writer is not None:
                step.writer.__exit__(None, None, None)


class _Step:
    """Chunk, embed and write one batch of changed documents; the model loads with the first batch."""

    def __init__(self, settings, embedder, fresh, previous, report, progress, ngram_present: bool) -> None:
        self.settings, self.embedder, self.fresh, self.previous = settings, embedder, fresh, previous
        self.ngram_present = ngram_present
        self.report, self.progress = report, progress
        self.writer = None
        self.emb = self.export = self.splitter = None

    def write(self, batch: list[SourceDoc]) -> None:
        from rag.model_cache import load_ingest_embedder
        from rag.pgstore import PgWriter

        s = self.settings
        if self.emb is None:
            self.emb, self.export = load_ingest_embedder(s.model_cache, s.embed_model, self.embedder, s.ingest_precision)
            self.report.model_export = (self.export.describe() if self.export
                                        else "no ONNX export: embedded with sentence-transformers")
            self.splitter = make_splitter(s.chunk_size, s.chunk_overlap, self.emb.token_ids)
        chunks = [c for d in batch for c in chunk_document(d, self.splitter)]
        vectors = self.emb.embed_batch([c.text for c in chunks], progress=self.progress)
        if len(chunks) and not np.isfinite(vectors).all():
            raise IngestFailed("the embedding model returned NaN or infinite vectors; the index is unchanged")
        if self.writer is None:
            self.writer = PgWriter.begin(s, vectors.shape[1] if len(chunks) else int(self.emb.dim), fresh=self.fresh,
                                         ngram_present=self.ngram_present)
        self.writer.delete_sources([d.source for d in batch if d.source in self.previous])
        self.writer.add(_doc_entries(batch, chunks), chunks, vectors, _sentence_vectors(chunks, self.emb, s))
        self.report.chunks_embedded += len(chunks)


def _doc_entries(batch: list[SourceDoc], chunks: list[Chunk]) -> dict[str, DocEntry]:
    keys: dict[str, list[str]] = {d.source: [] for d in batch}
    for c in chunks:
        keys[c.source].append(c.id)
    return {d.source: DocEntry(d.sha256, d.title, d.date, d.language, keys[d.source]) for d in batch}


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
