"""The follow-up rule: what joins the conversation and what stays as asked."""

from __future__ import annotations

import pytest

from rag.engine import Engine
from rag.followup import is_follow_up, sane_rewrite
from tests.test_answers import MEETING_Q
from tests.test_llm import llm_engine, server  # noqa: F401  (server is a fixture)

SELF_CONTAINED = [
    "Wann wurde das Abkommen unterzeichnet?",
    "Gibt es eine Visumpflicht für Kasachstan?",
    "Is there a visa requirement for Kazakhstan?",
    "Which ministry approved that budget in 2021?",
    "Under which treaty did Kazakhstan join?",
    "Undergraduate programmes offered in Astana?",
    "Android devices supported by the eGov app?",
    "What is pgvector?",
    "What is the name of the treaty that was signed in 1992?",
    "Who chaired the VI Consultative Meeting?",
    "Können Sie mir sagen, wann das Abkommen unterzeichnet wurde?",
]
FOLLOW_UPS = [
    "and who chaired it?", "And when?", "Und die Mongolei?", "What about Germany?", "Why?",
    "Which countries did he meet with?", "What does that mean?", "When did that happen?",
    "Was bedeutet das?", "Wann wurde das unterzeichnet?", "Who lived there?", "Wann wurde sie gegründet?",
]


@pytest.mark.parametrize("question", SELF_CONTAINED)
def test_a_self_contained_question_is_not_a_follow_up(question):
    assert not is_follow_up(question)


@pytest.mark.parametrize("question", FOLLOW_UPS)
def test_a_question_that_leans_on_the_last_one_is_a_follow_up(question):
    assert is_follow_up(question)


def test_a_self_contained_question_retrieves_the_same_with_or_without_history(engine):
    """Without an LLM a follow-up's retrieval query gets the last question appended; a question
    with a determiner ("that meeting") must not."""
    question = "Which city hosted that parliamentary meeting of Central Asian states and South Korea?"
    alone = engine.ask(question)
    after = engine.ask(question, history=[(MEETING_Q, "August 9, 2024 [1]")])
    assert after.retrieved == alone.retrieved


def test_a_real_follow_up_still_joins_the_conversation(engine):
    alone = engine.ask("Which countries did he meet with?")
    after = engine.ask("Which countries did he meet with?", history=[("Who is the Chairman of the Mazhilis?", "")])
    assert after.retrieved[0] == "000_f95afc1178a02e7b.txt" and after.retrieved != alone.retrieved


def test_no_rewrite_request_for_a_question_with_a_determiner(built, server):  # noqa: F811
    engine = llm_engine(built, server)
    server.script = [{"content": "It was held in Ashgabat [1]."}]
    engine.ask("Is there a record of where the parliamentary meeting with South Korea was held?",
               history=[(MEETING_Q, "August 9, 2024 [1]")])
    assert len(server.requests) == 1, "only the answer: no follow-up rewrite"


def test_a_sane_rewrite_is_kept_even_without_history():
    line = "Who chaired the VI Consultative Meeting of the Heads of State of Central Asia?"
    assert sane_rewrite(line, "Who chaired the meeting?", []) == line
    assert sane_rewrite("Tell me more. " * 50, "Who chaired the meeting?", []) is None
