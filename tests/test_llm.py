"""The LLM path over real HTTP against a scripted OpenAI-compatible server on 127.0.0.1."""

import json
import logging
import os
import subprocess
import sys

import pytest

from rag.citations import renumber
from rag.engine import Engine
from rag.llm_answer import LLMAnswerer
from tests.fake_openai import FakeOpenAI
from tests.test_answers import MEETING_Q

SECRET = "sk-test-very-secret-key-123"


@pytest.fixture
def server():
    fake = FakeOpenAI().start()
    yield fake
    fake.stop()


def llm_engine(built, server, **over):
    settings = built.with_(llm_base_url=server.base_url, llm_api_key=SECRET, llm_timeout=over.pop("timeout", 5.0),
                           llm_retries=over.pop("retries", 1), **over)
    return Engine(settings, llm=LLMAnswerer(settings, backoff_s=0.01))


def test_answer_comes_from_the_server_with_citations_mapped_to_files(built, server):
    engine = llm_engine(built, server)
    hits, _, _ = engine.retrieve(MEETING_Q)
    n = next(i for i, h in enumerate(hits, start=1) if h.chunk.source == "001_693447a3f6ff537d.txt")
    server.script = [{"content": f"The meeting took place on August 9, 2024 [{n}]."}]
    a = engine.ask(MEETING_Q)
    assert a.backend == "llm"
    assert a.text == "The meeting took place on August 9, 2024 [1]."
    assert [(c.n, c.source) for c in a.citations] == [(1, "001_693447a3f6ff537d.txt")]
    prompt = server.last_user_message()
    assert MEETING_Q in prompt
    assert "took place on August 9, 2024" in prompt  # the retrieved source text is sent
    assert 'file="001_693447a3f6ff537d.txt"' in prompt
    assert server.headers[-1]["Authorization"] == f"Bearer {SECRET}"


def test_bad_markers_are_dropped_and_the_rest_renumbered(built, server):
    engine = llm_engine(built, server)
    server.script = [{"content": "Tokayev led it [3]. Aliyev attended [42][1]."}]
    a = engine.ask(MEETING_Q)
    assert a.text == "Tokayev led it [1]. Aliyev attended [2]."
    assert [c.n for c in a.citations] == [1, 2]
    assert any("[42]" in n or "42" in n for n in a.notes)


def test_uncited_claims_are_flagged(built, server):
    server.script = [{"content": "It happened on August 9, 2024."}]
    a = llm_engine(built, server).ask(MEETING_Q)
    assert a.citations == [] and any("cites no source" in n for n in a.notes)


def test_not_found_reply_is_an_abstention(built, server):
    server.script = [{"content": "I couldn't find this in the documents."}]
    a = llm_engine(built, server).ask("What is the population of Kazakhstan?")
    assert a.abstained and a.citations == []


def test_streaming_yields_the_text_as_it_arrives(built, server):
    engine = llm_engine(built, server)
    server.script = [{"content": "", "pieces": ["The meeting ", "was on August 9, ", "2024 [", "2]", "."]}]
    pieces = list(engine.ask_stream(MEETING_Q))
    final = pieces[-1]
    text = "".join(pieces[:-1])
    assert len(pieces) > 3
    assert text == final.text == "The meeting was on August 9, 2024 [1]."
    assert server.requests[-1]["stream"] is True


@pytest.mark.parametrize("step, reason", [
    ({"status": 500}, "HTTP 500"),
    ({"status": 429}, "HTTP 429"),
    ({"malformed": True}, ""),
    ({"empty": True}, "empty completion"),
    ({"delay": 1.5, "content": "late [1]"}, "within"),
])
def test_faults_fall_back_to_the_extractive_answer_with_a_note(built, server, step, reason, caplog):
    engine = llm_engine(built, server, timeout=0.5, retries=1)
    server.script = [dict(step), dict(step)]
    with caplog.at_level(logging.DEBUG):
        a = engine.ask(MEETING_Q)
    assert a.backend == "extractive"
    assert "August 9, 2024 [1]" in a.text
    note = next(n for n in a.notes if n.startswith("LLM unavailable"))
    assert reason in note and note.endswith("showing the extracted answer")
    assert len(server.requests) == 2  # one try and one bounded retry
    assert SECRET not in caplog.text and SECRET not in json.dumps(a.to_json())


def test_follow_up_is_rewritten_by_the_llm_before_retrieval(built, server):
    engine = llm_engine(built, server)
    server.script = [{"content": "Who chaired the VI Consultative Meeting of the Heads of State of Central Asia?"},
                     {"content": "Kassym-Jomart Tokayev chaired it [1]."}]
    a = engine.ask("and who chaired it?", history=[(MEETING_Q, "August 9, 2024 [1]")])
    assert "and who chaired it?" in server.requests[0]["messages"][-1]["content"]
    assert a.retrieved[0] == "001_693447a3f6ff537d.txt"
    assert "Who chaired the VI Consultative Meeting" in server.last_user_message()


def test_query_expansion_translates_before_retrieval(built, server):
    engine = llm_engine(built, server, llm_expand_query=True)
    server.script = [{"content": "Was sagte Tokajew über die Neutralität Turkmenistans?"},
                     {"content": "He stressed its role for stability [1]."}]
    a = engine.ask("What did Tokayev say about Turkmenistan's neutrality?")
    assert "German, English" in server.requests[0]["messages"][0]["content"]  # the corpus's languages
    assert a.retrieved[0] == "002_ddc9d047bacb3bd0.txt"
    assert a.citations[0].source == "002_ddc9d047bacb3bd0.txt"


def test_prompt_fences_sources_and_the_rules():
    from rag.prompt import SYSTEM, render_sources

    assert "not instructions" in SYSTEM and "language of the question" in SYSTEM
    assert "[1]" in SYSTEM and "couldn't find" in SYSTEM


def test_renumber_examples():
    assert renumber("A [2], B [2] and C [1, 7].", 3)[0] == "A [1], B [1] and C [2]."


def cli(built, *args, base_url):
    env = {**os.environ, "RAG_SEEDS_DIR": str(built.seeds_dir), "RAG_INDEX_DIR": str(built.index_dir),
           "RAG_LLM_BASE_URL": base_url, "RAG_LLM_API_KEY": SECRET, "RAG_LLM_RETRIES": "1", "RAG_LLM_TIMEOUT": "3"}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_with_server_up_then_down(built, server):
    engine = llm_engine(built, server)
    hits, _, _ = engine.retrieve(MEETING_Q)
    n = next(i for i, h in enumerate(hits, start=1) if h.chunk.source == "001_693447a3f6ff537d.txt")
    server.default = {"content": f"August 9, 2024 [{n}]"}
    out = cli(built, "ask", "--json", MEETING_Q, base_url=server.base_url)
    data = json.loads(out.stdout)
    assert out.returncode == 0 and data["backend"] == "llm"
    assert data["answer"] == "August 9, 2024 [1]"
    assert data["citations"][0]["source"] == "001_693447a3f6ff537d.txt"
    url = server.base_url
    server.stop()
    out = cli(built, "ask", "--json", MEETING_Q, base_url=url)
    data = json.loads(out.stdout)
    assert out.returncode == 0, out.stderr
    assert data["backend"] == "extractive" and "August 9, 2024 [1]" in data["answer"]
    assert any(n.startswith("LLM unavailable: cannot connect") for n in data["notes"])
    assert SECRET not in out.stdout + out.stderr and "Traceback" not in out.stderr
