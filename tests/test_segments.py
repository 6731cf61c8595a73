"""The FAISS scale path's incremental update (rag/segments.py), with the real model and real FAISS.

The seeds are 25 chunks; the tests lower DELTA_FROM_CHUNKS so they count as a big index, and
compare a delta update against a fresh full rebuild of the same documents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rag.segments as segments
from rag.engine import Engine
from rag.index import open_index
from rag.ingest import ingest_folder
from rag.store import current_folder

ROOT = Path(__file__).resolve().parents[1]
EU_SOURCE = "004_9ed8f173f51d1787.txt"
VI_SOURCE = "001_693447a3f6ff537d.txt"
TRAM = "\n\nThe delegation later toured the Zwijnaarde tram depot in Ghent."
QUESTIONS = [json.loads(line)["question"] for line in
             (ROOT / "evals" / "seeds_qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def big(workspace, monkeypatch):
    """The seeds indexed as one base that takes deltas (any size counts as big here)."""
    monkeypatch.setattr(segments, "DELTA_FROM_CHUNKS", 10)
    monkeypatch.setattr(segments, "COMPACT_FRACTION", 1.0)
    ingest_folder(workspace, rebuild=True)
    return workspace


def _fresh(settings, tmp_path: Path):
    """The same documents, indexed from nothing in another folder."""
    fresh = settings.with_(index_dir=tmp_path / "fresh-index")
    ingest_folder(fresh, rebuild=True)
    return fresh


def test_one_changed_source_is_written_as_a_delta_beside_the_linked_base(big):
    base_folder = current_folder(big.index_dir)
    path = big.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + TRAM, encoding="utf-8")
    report = ingest_folder(big)
    assert (report.updated, report.unchanged) == (1, 4)
    assert report.segments and report.segments.startswith("delta:"), report.segments
    folder = current_folder(big.index_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    n_eu = len(manifest["documents"][EU_SOURCE]["chunk_ids"])
    assert report.chunks_embedded == n_eu  # only the changed source was embedded
    # The base's files are the previous snapshot's own (hard links), never rewritten.
    for name in ("faiss.index", "vectors.npy", "chunks.jsonl", "bm25/data.csc.index.npy"):
        assert (folder / name).stat().st_ino == (base_folder / name).stat().st_ino, name
    assert manifest["segments"]["delta_chunks"] == n_eu and manifest["segments"]["tombstones"] > 0
    engine = Engine(big, auto_ingest=False)
    answer = engine.ask("Which tram depot did the delegation tour?")
    assert "Zwijnaarde" in answer.text and answer.citations[0].source == EU_SOURCE
    assert sum(d.chunks for d in engine.sources()) == report.chunks_total


def test_a_delta_update_answers_like_a_full_rebuild(big, tmp_path):
    path = big.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + TRAM, encoding="utf-8")
    (big.seeds_dir / "003_07e049bc62076820.txt").unlink()
    assert ingest_folder(big).segments.startswith("delta:")
    fresh = _fresh(big, tmp_path)
    delta_index, fresh_index = open_index(big), open_index(fresh)
    assert delta_index.num_chunks == fresh_index.num_chunks
    delta_engine, fresh_engine = Engine(big, auto_ingest=False), Engine(fresh, auto_ingest=False)
    agree = 0
    for q in QUESTIONS + ["Which tram depot did the delegation tour?"]:
        a, b = delta_engine.ask(q), fresh_engine.ask(q)
        # Dense search is exact on both (Flat at this size): the same chunks in the same order.
        qvec = delta_engine.embed_query(q)
        keys = []
        for index in (delta_index, fresh_index):
            ids, _ = index.read(lambda v: v.dense(qvec, 10))
            keys.append([s.chunk.id for s in index.read(lambda v: v.fetch(ids.tolist(), None))])
        assert keys[0] == keys[1], q
        agree += (a.text, a.abstained, a.retrieved[:3]) == (b.text, b.abstained, b.retrieved[:3])
    # BM25 keeps the base's mean chunk length until compaction: an answer may differ, rarely.
    assert agree >= 0.96 * (len(QUESTIONS) + 1), agree


def test_removed_and_replaced_chunks_are_never_returned(big):
    (big.seeds_dir / VI_SOURCE).unlink()
    report = ingest_folder(big)
    assert report.removed == 1 and report.segments.startswith("delta:")
    index = open_index(big)
    everything = index.num_chunks + 10
    probe = open_index(big)
    for kind in index.lexical_kinds:
        ids, _ = index.read(lambda v: v.lexical(kind, "Consultative Meeting Heads of State", everything))
        assert VI_SOURCE not in {s.chunk.source for s in probe.read(lambda v: v.fetch(ids.tolist(), None))}, kind
    rng = np.random.default_rng(0)
    q = rng.standard_normal(index.manifest.dim).astype(np.float32)
    ids, _ = index.read(lambda v: v.dense(q / np.linalg.norm(q), everything))
    assert len(ids) == index.num_chunks  # every live chunk, each once
    assert VI_SOURCE not in {s.chunk.source for s in index.read(lambda v: v.fetch(ids.tolist(), None))}
    answer = Engine(big, auto_ingest=False).ask("When did the VI Consultative Meeting of the Heads of State of Central Asia take place?")
    assert VI_SOURCE not in answer.retrieved


def test_a_second_update_carries_the_delta_and_compaction_folds_it_into_one_base(big, monkeypatch):
    path = big.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + TRAM, encoding="utf-8")
    ingest_folder(big)
    (big.seeds_dir / "new.txt").write_text("The Ashgabat library opened a reading room for maps in 2023.",
                                           encoding="utf-8")
    second = ingest_folder(big)
    assert second.added == 1 and second.chunks_embedded == 1  # the old delta's chunks are carried, not re-embedded
    engine = Engine(big, auto_ingest=False)
    assert "Zwijnaarde" in engine.ask("Which tram depot did the delegation tour?").text
    # A source that lives in the delta changes again: its old delta rows go, nothing is tombstoned twice.
    path.write_text(path.read_text(encoding="utf-8").replace("Zwijnaarde", "Gentbrugge"), encoding="utf-8")
    third = ingest_folder(big)
    assert third.updated == 1 and third.segments.startswith("delta:")
    index = open_index(big)
    ids, _ = index.read(lambda v: v.lexical("bm25", "Zwijnaarde Gentbrugge tram depot", index.num_chunks))
    texts = [s.chunk.text for s in index.read(lambda v: v.fetch(ids.tolist(), None))]
    assert any("Gentbrugge" in t for t in texts) and not any("Zwijnaarde" in t for t in texts)
    assert sum(d.chunks for d in Engine(big, auto_ingest=False).sources()) == index.num_chunks
    monkeypatch.setattr(segments, "COMPACT_FRACTION", 0.01)
    (big.seeds_dir / "new.txt").write_text("The Ashgabat library opened a reading room for globes in 2024.",
                                           encoding="utf-8")
    fourth = ingest_folder(big)
    assert fourth.segments.startswith("compacting"), fourth.segments
    folder = current_folder(big.index_dir)
    assert not (folder / "delta").exists() and not (folder / "tombstones.npy").exists()
    assert "segments" not in json.loads((folder / "manifest.json").read_text())
    engine = Engine(big, auto_ingest=False)
    assert "Gentbrugge" in engine.ask("Which tram depot did the delegation tour?").text
    assert "globes" in engine.ask("What did the Ashgabat library open a reading room for?").text


KILLED_UPDATE = """
import os, signal, sys
from pathlib import Path
import rag.segments as segments
from rag.config import Settings
from rag.ingest import ingest_folder

segments.DELTA_FROM_CHUNKS, segments.COMPACT_FRACTION = 10, 1.0
link = segments.link_base
def link_then_die(base, into):
    link(base, into)
    os.kill(os.getpid(), signal.SIGKILL)  # mid-update: base linked, delta not written, current not moved
segments.link_base = link_then_die
ingest_folder(Settings(seeds_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2])))
"""


def test_an_update_killed_midway_leaves_the_old_generation_answering(big):
    before = current_folder(big.index_dir)
    path = big.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + TRAM, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", KILLED_UPDATE, str(big.seeds_dir), str(big.index_dir)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert any(p.name.startswith(".tmp-") for p in (big.index_dir / "snapshots").iterdir())  # it did get that far
    assert current_folder(big.index_dir) == before
    engine = Engine(big, auto_ingest=False)
    assert "Zwijnaarde" not in engine.ask("Which tram depot did the delegation tour?").text
    assert engine.ask("When did the VI Consultative Meeting of the Heads of State of Central Asia take place?"
                      ).text.startswith("August 9, 2024")
    report = ingest_folder(big)  # the next update succeeds and clears what the killed one left
    assert report.segments.startswith("delta:")
    assert not any(p.name.startswith(".tmp-") for p in (big.index_dir / "snapshots").iterdir())
    assert "Zwijnaarde" in Engine(big, auto_ingest=False).ask("Which tram depot did the delegation tour?").text


def test_a_question_on_the_old_generation_keeps_reading_it_after_a_delta_update(big):
    """A loaded index is its own consistent view: an update beside it changes nothing it returns."""
    engine = Engine(big, auto_ingest=False)
    before = engine.ask("Which delegation met in Brussels?").to_json()
    path = big.seeds_dir / EU_SOURCE
    path.write_text("Nothing about Europe here any more.", encoding="utf-8")
    assert ingest_folder(big).segments.startswith("delta:")
    again = engine.ask("Which delegation met in Brussels?").to_json()
    assert (again["answer"], again["citations"]) == (before["answer"], before["citations"])
