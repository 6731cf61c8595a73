"""One ONNX export per user: reused by every new index, checked at load, repaired when damaged.

Tests that damage files work on a private copy of the cache entry (a copy, never a hard link),
so the user-wide cache the rest of the suite shares stays intact.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

from rag.embed import ONNX_FILE, TOKENIZER_FILE, OnnxEmbedder
from rag.engine import Engine
from rag.ingest import ingest_folder
from rag.model_cache import export_name, sha256_file, verify
from rag.store import load_snapshot
from tests.test_answers import MEETING_Q
from tests.test_cli import run


def _private_cache(settings, tmp_path):
    """A copy of the shared cache entry, free to damage."""
    entry = settings.model_cache / export_name(settings.embed_model)
    cache = tmp_path / "models"
    shutil.copytree(entry, cache / entry.name)
    return settings.with_(model_cache=cache), cache / entry.name


def _damage(path, keep_mtime: bool = False):
    st = path.stat()
    with open(path, "r+b") as fh:  # same size, bytes changed in the middle: what a bad disk or copy does
        fh.seek(st.st_size // 2)
        fh.write(b"\xde\xad\xbe\xef" * 64)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_new_index_folder_reuses_the_cached_export_and_records_it(built, tmp_path, caplog):
    entry = built.model_cache / export_name(built.embed_model)
    before = {p.name: p.stat().st_mtime_ns for p in entry.iterdir() if p.suffix in (".onnx", ".json")}
    settings = built.with_(index_dir=tmp_path / "second-index")
    with caplog.at_level("INFO", logger="rag.model_cache"):
        report = ingest_folder(settings)
    assert report.chunks_embedded > 0
    assert report.model_export == f"reused the cached ONNX export in {entry}"
    assert "using the cached ONNX export" in caplog.text and "exporting" not in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in entry.iterdir() if p.name in before} == before
    assert not (settings.index_dir / "models").exists()
    record = load_snapshot(settings.index_dir).manifest.embedder
    assert record["export"] == entry.name
    assert record["sha256"] == {n: sha256_file(entry / n) for n in (ONNX_FILE, TOKENIZER_FILE)}
    assert not any(p.suffix == ".onnx" for p in load_snapshot(settings.index_dir).folder.iterdir())


def test_ask_with_a_damaged_model_repairs_it_and_answers(workspace, tmp_path):
    settings, entry = _private_cache(workspace, tmp_path)
    _damage(entry / ONNX_FILE)
    out = run(settings, "ask", MEETING_Q, env_extra={"RAG_MODEL_CACHE": str(settings.model_cache)})
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "protobuf" not in out.stderr.lower()
    assert "damaged" in out.stderr
    assert out.stdout.startswith("August 9, 2024 [1]")
    assert verify(entry) is not None  # exported again: the files match their checksums


def test_no_op_ingest_finds_damage_a_quick_check_would_miss_and_repairs_it(workspace, tmp_path, embedder):
    settings, entry = _private_cache(workspace, tmp_path)
    _damage(entry / TOKENIZER_FILE, keep_mtime=True)  # same size and mtime: only a full hash sees it
    assert verify(entry, full=False) is not None
    report = ingest_folder(settings, embedder=embedder)
    assert report.chunks_embedded == 0
    assert report.model_export.startswith("new ONNX export")
    assert verify(entry) is not None
    answer = Engine(settings).ask(MEETING_Q)
    assert answer.text.startswith("August 9, 2024 [1]")


def test_rebuild_with_a_damaged_model_repairs_it(workspace, tmp_path):
    settings, entry = _private_cache(workspace, tmp_path)
    (entry / ONNX_FILE).write_bytes(b"not a model")
    report = ingest_folder(settings, rebuild=True)  # embeds through the repaired ONNX copy
    assert report.chunks_embedded == report.chunks_total > 0
    assert report.model_export.startswith("new ONNX export")
    engine = Engine(settings)
    assert engine.ask(MEETING_Q).citations[0].source == "001_693447a3f6ff537d.txt"
    assert isinstance(engine.embedder, OnnxEmbedder)


def test_two_processes_exporting_at_once_leave_one_good_entry(tmp_path):
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from rag.config import BUNDLED_MODEL
        from rag.model_cache import ensure_export
        export = ensure_export(Path(sys.argv[1]), BUNDLED_MODEL)
        print(json.dumps({"reused": export.reused, "folder": str(export.folder)}))
    """)
    cache = tmp_path / "models"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(cache)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in results]
    outs = [json.loads(out) for out, _ in results]
    assert sorted(o["reused"] for o in outs) == [False, True]  # one exported, the other waited and reused it
    assert len({o["folder"] for o in outs}) == 1
    assert verify(cache / export_name("bundled:all-MiniLM-L6-v2")) is not None
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [export_name("bundled:all-MiniLM-L6-v2")]
