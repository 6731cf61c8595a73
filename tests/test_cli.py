"""The `rag` command as a user runs it: real processes, real index, JSON shapes and exit codes."""

import json
import os
import subprocess
import sys

import pytest

from tests.test_answers import MEETING_Q


def run(settings, *args, env_extra=None, stdin=None):
    env = {**os.environ, "RAG_SEEDS_DIR": str(settings.seeds_dir), "RAG_INDEX_DIR": str(settings.index_dir),
           "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=300, cwd=settings.seeds_dir.parent)


def test_ask_json_shape(built):
    out = run(built, "ask", "--json", MEETING_Q)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"question", "answer", "abstained", "backend", "notes", "citations", "timings_ms"}
    assert data["backend"] == "extractive" and data["abstained"] is False
    assert "August 9, 2024 [1]" in data["answer"]
    cit = data["citations"][0]
    assert set(cit) == {"n", "source", "title", "date", "snippet", "score"}
    assert cit["source"] == "001_693447a3f6ff537d.txt" and cit["n"] == 1


def test_ingest_json_shape_and_nothing_to_embed_the_second_time(built):
    out = run(built, "ingest", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"added", "updated", "removed", "unchanged", "chunks_embedded", "seconds"} <= set(data)
    assert data["chunks_embedded"] == 0 and data["unchanged"] == 5


def test_blank_question_exits_2_with_a_message(built):
    out = run(built, "ask", "   ")
    assert out.returncode == 2
    assert "empty" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("var, value", [("RAG_TOP_K", "lots"), ("RAG_CHUNK_OVERLAP", "500"), ("RAG_RETRIEVER", "magic")])
def test_invalid_setting_names_the_variable(built, var, value):
    out = run(built, "ask", "hello", env_extra={var: value})
    assert out.returncode == 2
    assert var in out.stderr and "Traceback" not in out.stderr


def test_corrupt_index_message_from_cli(workspace):
    from rag.store import load_snapshot

    (load_snapshot(workspace.index_dir).folder / "chunks.jsonl").write_text("{not json", encoding="utf-8")
    out = run(workspace, "ask", MEETING_Q)
    assert out.returncode == 1
    assert "rag ingest --rebuild" in out.stderr and "Traceback" not in out.stderr


def test_repl_reads_piped_questions_and_shows_sources(built):
    out = run(built, "repl", stdin=f"{MEETING_Q}\n:sources\nWho won the 2024 European football championship?\n")
    assert out.returncode == 0, out.stderr
    assert "August 9, 2024 [1]" in out.stdout
    assert "001_693447a3f6ff537d.txt" in out.stdout
    assert "couldn't find" in out.stdout


def test_sources_lists_documents_with_chunk_counts(built):
    out = run(built, "sources", "--json")
    docs = json.loads(out.stdout)
    assert len(docs) == 5 and all(d["chunks"] > 0 for d in docs)
