"""Against a real llama.cpp server (llama-cpp-python[server]) serving a tiny random-weight model.

Run alone with `pytest -m llamacpp`. The model talks gibberish, so every answer must come from
the verify-and-fall-back rule; the small-context server produces the real context-length error.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.test_answers import MEETING_Q

pytestmark = pytest.mark.llamacpp
pytest.importorskip("gguf", reason="the gguf package writes the test model: pip install gguf")
pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed (see .ci/run)")

from tests.llamacpp_server import LlamaServer, write_tiny_llama  # noqa: E402

KEY = "sk-llamacpp-test-key-42"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


def _server(model, tmp_path_factory, **kw):
    srv = LlamaServer(model, tmp_path_factory.mktemp("llama-log") / "server.log", **kw)
    try:
        srv.wait_ready()
    except RuntimeError:
        srv.stop()
        raise
    return srv


@pytest.fixture(scope="module")
def llama(model, tmp_path_factory):
    srv = _server(model, tmp_path_factory)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def small_llama(model, tmp_path_factory):
    srv = _server(model, tmp_path_factory, n_ctx=512)
    yield srv
    srv.stop()


def rag(built, base_url, *args, key=KEY):
    env = {**os.environ, "RAG_SEEDS_DIR": str(built.seeds_dir), "RAG_INDEX_DIR": str(built.index_dir),
           "RAG_LLM_BASE_URL": base_url, "RAG_LLM_API_KEY": key, "RAG_LLM_TIMEOUT": "60",
           "RAG_LLM_MAX_TOKENS": "48"}  # gibberish either way; fewer tokens, a faster test
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, timeout=180)


def test_gibberish_is_discarded_for_the_cited_extractive_answer(built, llama):
    out = rag(built, llama.base_url, "ask", "--json", MEETING_Q)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["backend"] == "extractive"
    assert data["answer"].startswith("August 9, 2024 [1]")
    assert data["citations"][0]["source"] == "001_693447a3f6ff537d.txt" and data["confidence"] > 0.5
    assert any(n.startswith("the LLM's reply was discarded") for n in data["notes"]), data["notes"]


def test_streamed_gibberish_never_reaches_the_terminal(built, llama):
    out = rag(built, llama.base_url, "ask", MEETING_Q)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("August 9, 2024 [1]")
    assert "note: the LLM's reply was discarded" in out.stdout
    assert not any(ord(c) < 32 and c not in "\n\t" for c in out.stdout)


def test_context_overflow_is_quoted_after_one_request(built, small_llama):
    before = small_llama.requests()
    out = rag(built, small_llama.base_url, "ask", "--json", MEETING_Q)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert small_llama.requests() - before == 1  # a 400 is not retried
    assert data["backend"] == "extractive" and data["answer"].startswith("August 9, 2024 [1]")
    note = next(n for n in data["notes"] if n.startswith("LLM unavailable"))
    assert "HTTP 400" in note and "maximum context length is 512 tokens" in note


def test_context_overflow_while_streaming_is_reported_as_an_empty_stream(built, small_llama):
    before = small_llama.requests()
    out = rag(built, small_llama.base_url, "ask", MEETING_Q)
    assert out.returncode == 0, out.stderr
    assert small_llama.requests() - before == 1
    assert out.stdout.startswith("August 9, 2024 [1]")
    assert "ended the stream without sending anything" in out.stdout


def test_a_wrong_key_is_refused_once_and_never_printed(built, model, tmp_path_factory):
    srv = _server(model, tmp_path_factory, api_key="the-right-key")
    try:
        out = rag(built, srv.base_url, "ask", "--json", MEETING_Q)
        assert srv.requests() == 1
    finally:
        srv.stop()
    data = json.loads(out.stdout)
    assert any("HTTP 401" in n for n in data["notes"]) and data["answer"].startswith("August 9, 2024 [1]")
    assert KEY not in out.stdout + out.stderr
