"""Documents → chunks → vectors → snapshot, re-embedding only what changed.

Chunks and their vectors are reused for every document whose content hash is unchanged; FAISS and
the lexical indexes are rebuilt from the stored vectors (cheap next to embedding). A changed model,
chunking or pipeline version makes the old vectors meaningless, so that triggers a full rebuild.

Memory stays bounded by the corpus, not by a multiple of it: documents are read and chunked one
at a time (only one file's text is held), and texts are embedded in windows of EMBED_WINDOW into
preallocated arrays. One ingest at a time per index folder (`store.ingest_lock`); a failure to
write leaves the previous index in place and says why (IngestFailed).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rag.chunk import chunk_document, make_splitter
from rag.config import Settings
from rag.errors import IndexCorrupt, IndexIncompatible, IndexMissing, IngestFailed, SeedsMissing
from rag.index import DocEntry, Manifest, lexical_kinds
from rag.lexical import LexicalIndex
from rag.load import Reader, Skipped, scan
from rag.model_cache import ensure_export, load_ingest_embedder
from rag.progress import Progress, track
from rag.records import Chunk, SourceDoc
from rag.segments import (DELTA_DIR, Delta, Segments, document_rows, load_delta, load_tombstones,
                          needs_compaction)
from rag.store import (FIX, SnapshotWriter, build_faiss, current_folder, ingest_lock, load_snapshot, read_manifest,
                       rebuild_reason, resolve_faiss_spec, write_error)

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
    skipped: list[Skipped] = field(default_factory=list)  # files not indexed, and why
    model_export: str | None = None  # which ONNX export embedded (cached or new), for the user
    notes: list[str] = field(default_factory=list)  # settings that could not be applied as given
    segments: str | None = None  # how a big index was updated: a delta beside its base, or compacted
    # Seconds per stage: read (read, clean, detect language), chunk, load model, lexical (BM25), embed
    # (chunks and sentences), faiss, write.
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    def skipped_json(self) -> list[dict]:
        """`skipped` as the manifest stores it."""
        return [asdict(s) for s in self.skipped]


EMBED_WINDOW = 1024  # texts tokenized and embedded at once: bounds the tokenizer's memory (~25 MB)


def seed_signature(seeds_dir: Path, allow_outside_links: bool = False) -> dict[str, list[int]]:
    """Cheap change detection for `ask`: size and mtime of every candidate file."""
    return scan(seeds_dir, allow_outside_links).signature()


def finish_reading(report: IngestReport, settings: Settings, read_any: bool, skipped, seed_stats) -> dict | None:
    """Once every document was read (both stores): note the skipped files, refuse a folder with
    nothing readable, and return the files' size/mtime signature to store (None: the caller gave none)."""
    report.skipped = list(skipped)
    if not read_any:
        raise SeedsMissing(
            f"no readable documents in {str(settings.seeds_dir)!r} (.txt, .md, .html, .pdf)"
            + (f"; skipped: {', '.join(s.source for s in skipped)}" if skipped else "")
        )
    return dict(seed_stats) if seed_stats is not None else None


def unchanged(report: IngestReport, settings: Settings, embedder, manifest: Manifest, seed_stats) -> bool:
    """An ingest that changed no document (both stores): check the model export the questions will
    use (repairing a damaged one, opening no model), and say whether the stored bookkeeping (the
    files' signature, the skipped list) must still be rewritten. An unknown signature leaves it."""
    export = ensure_export(settings.model_cache, settings.embed_model, embedder)
    report.model_export = export.describe() if export else None
    return seed_stats is not None and (manifest.seed_stats != seed_stats or manifest.skipped != report.skipped_json())


def _previous(settings: Settings, rebuild: bool, report: IngestReport):
    if rebuild:
        report.rebuilt = "requested with --rebuild"
        return None
    try:
        snap = load_snapshot(settings.index_dir, lexical_kinds=())  # reused: chunks and vectors, not BM25
        reason = rebuild_reason(snap.manifest, settings)
        if reason:
            raise IndexIncompatible(reason)
        return snap
    except IndexMissing:
        return None
    except (IndexIncompatible, IndexCorrupt) as err:
        report.rebuilt = err.reason
        log.warning("rebuilding the whole index: %s", report.rebuilt)
        return None


def _previous_base(settings: Settings, rebuild: bool) -> DeltaBase | None:
    """The previous snapshot when it is big enough to take a delta (rag/segments.py), else None.

    Reads the manifest, the old delta and the tombstones only: never the base's chunks or FAISS
    index. Anything odd returns None, and the full path (`_previous`) decides what to do.
    """
    if rebuild:
        return None
    try:
        folder = current_folder(settings.index_dir)
        manifest = read_manifest(settings.index_dir)
        if folder is None or manifest is None or rebuild_reason(manifest, settings):
            return None
        seg = Segments.of(manifest)
        if needs_compaction(seg.base_chunks, 0, 0):
            return None
        delta = load_delta(folder, manifest.dim, manifest.lexical_kinds)
        tombstones = load_tombstones(folder)
        if len(delta.chunks) != seg.delta_chunks or len(tombstones) != seg.tombstones:
            return None
        return DeltaBase(folder, manifest, seg, delta, tombstones)
    except Exception as err:  # noqa: BLE001 - a damaged index is handled (and reported) by the full path
        log.info("not updating with a delta: %s", err)
        return None


def ingest_folder(settings: Settings, embedder=None, rebuild: bool = False, progress: bool = False) -> IngestReport:
    """Index the seeds folder into settings.index_dir, incrementally."""
    start = time.perf_counter()
    reader = Reader(scan(settings.seeds_dir, settings.allow_outside_links), settings.max_file_bytes)
    # The reader fills `skipped` and `stats` as build_index pulls documents from it.
    report = build_index(
        reader.documents(), settings, embedder, rebuild=rebuild, progress=progress,
        skipped=reader.skipped, seed_stats=reader.stats,
    )
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def build_index(
    docs: Iterable[SourceDoc],
    settings: Settings,
    embedder=None,
    rebuild: bool = False,
    progress: bool = False,
    skipped: list[Skipped] = (),
    seed_stats: dict | None = None,
) -> IngestReport:
    """Index `docs` (consumed one at a time) into settings.index_dir; one ingest per folder at once.

    `skipped` and `seed_stats` are read after `docs` is exhausted, so a lazy reader may fill them.
    """
    if settings.store_url:  # the index lives in PostgreSQL: rag/pgingest.py updates it in place
        from rag.pgingest import ingest_into_postgres

        return ingest_into_postgres(docs, settings, embedder, rebuild, progress, skipped, seed_stats)
    with ingest_lock(settings.index_dir):
        return _build_index(docs, settings, embedder, rebuild, progress, skipped, seed_stats)


class _Clock:
    """Seconds spent per ingest stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    def timed(self, stage: str, items: Iterable) -> Iterator:
        it = iter(items)
        while True:
            t = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.add(stage, t)
                return
            self.add(stage, t)
            yield item

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


@dataclass
class _Entry:
    """One document as read: unchanged (its rows in the previous index) or new chunks to embed."""

    source: str
    meta: DocEntry  # the manifest's entry
    rows: tuple[int, int] | None  # previous rows [start, stop) when unchanged
    chunks: list[Chunk] | None  # when added or changed


def _build_index(docs, settings, embedder, rebuild, progress, skipped, seed_stats) -> IngestReport:
    start = time.perf_counter()
    clock = _Clock()
    report = IngestReport()
    # A big index takes a delta and is not loaded whole; anything else loads the previous snapshot.
    base = _previous_base(settings, rebuild)
    prev = None if base is not None else _previous(settings, rebuild, report)
    prev_manifest = base.manifest if base is not None else prev.manifest if prev is not None else Manifest()
    prev_docs = prev_manifest.documents
    prev_rows = document_rows(prev_manifest)

    # Loaded only when something changed: a no-op ingest opens no model at all.
    model = functools.cache(
        lambda: load_ingest_embedder(settings.model_cache, settings.embed_model, embedder, settings.ingest_precision)
    )
    splitter = None
    entries: list[_Entry] = []
    for doc in track(clock.timed("read", docs), "reading and chunking", "document", enabled=progress):
        t = time.perf_counter()
        old = prev_docs.get(doc.source)
        meta = DocEntry(doc.sha256, doc.title, doc.date, doc.language, [])
        if old and old.sha256 == doc.sha256 and _rows_hold(prev, prev_rows.get(doc.source), old.chunk_ids):
            report.unchanged += 1
            entries.append(_Entry(doc.source, meta.with_(chunk_ids=old.chunk_ids), prev_rows[doc.source], None))
        else:
            if old:
                report.updated += 1
            else:
                report.added += 1
            if splitter is None:
                token_ids = model()[0].token_ids
                t = time.perf_counter()  # loading the model is not chunking
                splitter = make_splitter(settings.chunk_size, settings.chunk_overlap, token_ids)
            doc_chunks = chunk_document(doc, splitter)
            entries.append(_Entry(doc.source, meta.with_(chunk_ids=[c.id for c in doc_chunks]), None, doc_chunks))
        clock.add("chunk", t)
    seed_stats = finish_reading(report, settings, bool(entries), skipped, seed_stats)
    report.removed = len(set(prev_docs) - {e.source for e in entries})
    report.chunks_total = sum(len(e.meta.chunk_ids) for e in entries)

    had_index = base is not None or prev is not None
    if had_index and not (report.added or report.updated or report.removed):
        if unchanged(report, settings, embedder, prev_manifest, seed_stats):
            try:
                _rewrite_manifest(base.folder if base is not None else prev.folder,
                                  prev_manifest.with_(seed_stats=seed_stats, skipped=report.skipped_json()))
            except OSError as err:
                raise write_error(err, settings.index_dir) from None
        report.seconds = round(time.perf_counter() - start, 3)
        report.timings = clock.rounded()
        return report

    if base is not None:
        plan = _delta_plan(base, entries, settings)
        if isinstance(plan, str):  # the delta would be too big (or the channels change): one new base
            log.info("%s", plan)
            report.segments = plan
            prev = _load_for_compaction(settings)
        else:
            _write_delta(base, plan, entries, settings, model, report, clock, progress, seed_stats)
            report.seconds = round(time.perf_counter() - start, 3)
            report.timings = clock.rounded()
            return report
    _write_full(prev, entries, settings, model, report, clock, progress, seed_stats)
    report.seconds = round(time.perf_counter() - start, 3)
    report.timings = clock.rounded()
    return report


def _rows_hold(prev, rows: tuple[int, int] | None, chunk_ids: list[str]) -> bool:
    """Whether the previous index holds these chunks at these rows (checked when it is loaded)."""
    if rows is None or rows[1] - rows[0] != len(chunk_ids):
        return False
    return prev is None or [c.id for c in prev.chunks[rows[0]:rows[1]]] == list(chunk_ids)


def _load_for_compaction(settings: Settings):
    try:
        return load_snapshot(settings.index_dir, lexical_kinds=())
    except (IndexMissing, IndexCorrupt) as err:
        raise IndexCorrupt(f"{err.reason}; the documents read so far cannot be re-read", FIX) from None


def _manifest(settings: Settings, dim: int, faiss_spec: str, kinds, documents: dict[str, DocEntry],
              report: IngestReport, seed_stats, export) -> Manifest:
    return Manifest(
        model=settings.embed_model,
        dim=int(dim),
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        faiss_index=faiss_spec,
        sentence_vectors=settings.sentence_vectors,
        ingest_precision=settings.ingest_precision,
        lexical_kinds=tuple(kinds),
        documents=documents,
        skipped=report.skipped_json(),
        seed_stats=seed_stats,
        embedder=export.record() if export else None,
        created=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )


def _write_full(prev, entries: list[_Entry], settings, model, report, clock, progress, seed_stats) -> None:
    """Build every part over every chunk (reusing unchanged chunks' vectors) into a new snapshot."""
    chunks: list[Chunk] = []
    reuse: list[int | None] = []  # row in the previous snapshot, or None for a new chunk
    for e in entries:
        if e.rows is not None:
            chunks.extend(prev.chunks[e.rows[0]:e.rows[1]])
            reuse.extend(range(e.rows[0], e.rows[1]))
        else:
            chunks.extend(e.chunks)
            reuse.extend([None] * len(e.chunks))
    documents = {e.source: e.meta for e in entries}
    t = time.perf_counter()
    new_rows = [i for i, r in enumerate(reuse) if r is None]
    report.chunks_embedded = len(new_rows)
    embedder, export = model()
    report.model_export = export.describe() if export else "no ONNX export: embedded with sentence-transformers"
    dim = int(embedder.dim) if new_rows or prev is None else prev.vectors.shape[1]
    t = clock.add("load model", t)
    with SnapshotWriter(settings.index_dir) as snapshot:
        # Lexical indexes first, straight to disk: they need only the texts, and are not kept.
        with Progress(None, "building the lexical indexes", enabled=progress):
            kinds = lexical_kinds({d.language for d in documents.values()}, len(chunks), settings.embed_languages)
            for kind in kinds:
                snapshot.save_lexical(LexicalIndex.build(kind, [c.text for c in chunks], [c.language for c in chunks]))
        t = clock.add("lexical", t)

        vectors = np.empty((len(chunks), dim), dtype=np.float32)
        for i, r in enumerate(reuse):
            if r is not None:
                vectors[i] = prev.vectors[r]
        _embed_into(vectors, ((i, chunks[i].text) for i in new_rows), len(new_rows), embedder, progress)
        if settings.sentence_vectors:
            _write_sentence_vectors(snapshot, chunks, reuse, prev, embedder, progress, dim)
        t = clock.add("embed", t)

        faiss_index, faiss_spec = build_faiss(vectors, settings.faiss_index)
        if faiss_spec != resolve_faiss_spec(settings.faiss_index, len(chunks)):  # an untrainable IVF/PQ fell back
            report.notes.append(
                f"RAG_FAISS_INDEX={settings.faiss_index} needs more vectors to train than the {len(chunks)} "
                f"chunks; using {faiss_spec} (exact search) until the corpus grows"
            )
        t = clock.add("faiss", t)
        manifest = _manifest(settings, dim, faiss_spec, kinds, documents, report, seed_stats, export)
        snapshot.commit(manifest, chunks, vectors, faiss_index)
    clock.add("write", t)


@dataclass
class DeltaBase:
    """The previous snapshot, as a delta update needs it: manifest, old delta, tombstones."""

    folder: Path
    manifest: Manifest
    seg: Segments
    delta: Delta
    tombstones: np.ndarray


@dataclass
class _DeltaPlan:
    chunks: list[Chunk]  # the new delta's chunks, in row order
    reuse: list[int | None]  # each one's row in the old delta, or None to embed
    rows: dict[str, tuple[int, int]]  # every document's rows in the new snapshot
    tombstones: np.ndarray


def _delta_plan(base: DeltaBase, entries: list[_Entry], settings: Settings) -> _DeltaPlan | str:
    """What the new delta holds, or why the update must compact into a new base instead."""
    b = base.seg.base_chunks
    chunks: list[Chunk] = []
    reuse: list[int | None] = []
    rows: dict[str, tuple[int, int]] = {}
    kept_base: set[str] = set()
    for e in entries:
        if e.rows is not None and e.rows[1] <= b:  # unchanged, in the base: stays where it is
            rows[e.source] = e.rows
            kept_base.add(e.source)
            continue
        first = b + len(chunks)
        if e.rows is not None:  # unchanged, in the old delta: carried over
            chunks.extend(base.delta.chunks[e.rows[0] - b:e.rows[1] - b])
            reuse.extend(range(e.rows[0] - b, e.rows[1] - b))
        else:
            chunks.extend(e.chunks)
            reuse.extend([None] * len(e.chunks))
        rows[e.source] = (first, b + len(chunks))
    dead = [base.tombstones]
    for source, (lo, hi) in document_rows(base.manifest).items():
        if hi <= b and source not in kept_base:  # changed or removed: its base rows die
            dead.append(np.arange(lo, hi, dtype=np.int64))
    tombstones = np.unique(np.concatenate(dead))
    reason = needs_compaction(b, len(chunks), len(tombstones))
    if reason:
        return reason
    live = b - len(tombstones) + len(chunks)
    kinds = lexical_kinds({e.meta.language for e in entries}, live, settings.embed_languages)
    if tuple(kinds) != base.manifest.lexical_kinds:
        return f"compacting: the lexical channels change to {', '.join(kinds)}"
    spec = resolve_faiss_spec(settings.faiss_index, live)
    if spec != base.manifest.faiss_index:
        return f"compacting: the FAISS index changes from {base.manifest.faiss_index} to {spec}"
    return _DeltaPlan(chunks, reuse, rows, tombstones)


def _write_delta(base: DeltaBase, plan: _DeltaPlan, entries, settings, model, report, clock, progress,
                 seed_stats) -> None:
    """Publish a snapshot that links the base's files and writes only the new delta and tombstones."""
    from rag.lexical import saved_avgdl

    t = time.perf_counter()
    new_rows = [i for i, r in enumerate(plan.reuse) if r is None]
    report.chunks_embedded = len(new_rows)
    embedder, export = model()
    report.model_export = export.describe() if export else "no ONNX export: embedded with sentence-transformers"
    dim = base.manifest.dim
    t = clock.add("load model", t)
    kinds = base.manifest.lexical_kinds
    with SnapshotWriter(settings.index_dir) as snapshot:
        texts, langs = [c.text for c in plan.chunks], [c.language for c in plan.chunks]
        lexical = {k: LexicalIndex.build(k, texts, langs, delta_of_avgdl=saved_avgdl(base.folder, k) or _mean_len(k, texts))
                   for k in kinds}
        t = clock.add("lexical", t)
        vectors = np.empty((len(plan.chunks), dim), dtype=np.float32)
        for i, r in enumerate(plan.reuse):
            if r is not None:
                vectors[i] = base.delta.vectors[r]
        _embed_into(vectors, ((i, plan.chunks[i].text) for i in new_rows), len(new_rows), embedder, progress)
        if settings.sentence_vectors:
            _write_sentence_vectors(snapshot, plan.chunks, plan.reuse, base.delta, embedder, progress, dim,
                                    name=f"{DELTA_DIR}/sentences.npy")
        t = clock.add("embed", t)
        documents = {e.source: e.meta.with_(rows=plan.rows[e.source]) for e in entries}
        seg = Segments(base.seg.base_chunks, len(plan.chunks), len(plan.tombstones))
        report.segments = (f"delta: {seg.delta_chunks:,} chunks beside a base of {seg.base_chunks:,}, "
                           f"{seg.tombstones:,} of its rows replaced or removed")
        manifest = _manifest(settings, dim, base.manifest.faiss_index, kinds, documents, report, seed_stats, export)
        snapshot.commit_delta(manifest.with_(segments=seg.to_json()), base.folder, plan.chunks, vectors,
                              plan.tombstones, lexical)
    clock.add("write", t)


def _mean_len(kind: str, texts: list[str]) -> float:
    """Mean tokens per text: stands in for a base saved before its mean length was kept."""
    from rag.lexical import TOKENIZERS

    return float(np.mean([len(TOKENIZERS[kind](t)) or 1 for t in texts])) if texts else 1.0


def _embed(embedder, texts: list[str]) -> np.ndarray:
    vecs = embedder.embed_batch(texts)
    if not np.isfinite(vecs).all():
        raise IngestFailed(
            "the embedding model returned invalid numbers (NaN or infinity); its files may be damaged: "
            "delete this model's folder in RAG_MODEL_CACHE and run `rag ingest` again"
        )
    return vecs


def _embed_into(out: np.ndarray, pairs: Iterable[tuple[int, str]], total: int, embedder, progress: bool) -> None:
    """out[row] = the vector of text for each (row, text), EMBED_WINDOW texts at a time."""
    if not total:
        return
    rows: list[int] = []
    texts: list[str] = []
    with Progress(total, "embedding", "text", enabled=progress) as bar:
        def flush() -> None:
            out[rows] = _embed(embedder, texts)
            bar.update(len(texts))
            rows.clear()
            texts.clear()

        for row, text in pairs:
            rows.append(row)
            texts.append(text)
            if len(texts) >= EMBED_WINDOW:
                flush()
        if texts:
            flush()


def _write_sentence_vectors(snapshot, chunks, reuse, prev, embedder, progress, dim: int,
                            name: str = "sentences.npy") -> None:
    """sentences.npy, chunk by chunk in order, written as it is computed (never whole in memory).

    Unchanged chunks reuse their vectors from the previous snapshot; the others are embedded
    EMBED_WINDOW sentences at a time.
    """
    offsets_prev = prev.sentence_offsets if prev is not None and prev.sentence_vectors is not None else None
    fresh_total = sum(len(c.sentences) for c, r in zip(chunks, reuse) if r is None or offsets_prev is None)
    out = snapshot.rows(name, sum(len(c.sentences) for c in chunks), dim)
    pending: list[np.ndarray | int] = []  # in chunk order: reused vectors, or a count of texts to embed
    texts: list[str] = []
    with Progress(fresh_total, "embedding", "text", enabled=progress and fresh_total > 0) as bar:
        def flush() -> None:
            vecs = _embed(embedder, texts) if texts else None
            k = 0
            for part in pending:
                if isinstance(part, int):
                    out.write(vecs[k:k + part])
                    k += part
                else:
                    out.write(part)
            bar.update(len(texts))
            pending.clear()
            texts.clear()

        for c, r in zip(chunks, reuse):
            if r is not None and offsets_prev is not None:
                pending.append(np.asarray(prev.sentence_vectors[offsets_prev[r]:offsets_prev[r + 1]]))
            else:
                sentences = c.sentence_texts()
                pending.append(len(sentences))
                texts.extend(sentences)
            if len(texts) >= EMBED_WINDOW or len(pending) >= EMBED_WINDOW:
                flush()
        flush()
    out.close()


def _rewrite_manifest(folder: Path, manifest: Manifest) -> None:
    """Replace the manifest in place (atomic file replace) after a bookkeeping change; vectors are untouched."""
    from rag.atomic import write_json

    write_json(folder / "manifest.json", manifest.to_json())
