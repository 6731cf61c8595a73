import pytest

from rag.errors import BadQuestion

MEETING_Q = "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?"


def test_known_answer_with_citation(engine):
    a = engine.ask(MEETING_Q)
    assert not a.abstained
    assert a.text.startswith("August 9, 2024 [1]")
    assert a.citations[0].n == 1
    assert a.citations[0].source == "001_693447a3f6ff537d.txt"
    assert "August 9, 2024" in a.citations[0].snippet
    assert set(a.timings_ms) >= {"embed_query", "retrieve", "answer", "total"}


@pytest.mark.parametrize("question, source, expected", [
    ("Where was the second parliamentary meeting of Central Asian states and South Korea held?", "000_f95afc1178a02e7b.txt", "Ashgabat"),
    ("Where will the secretariat headquarters of the Korea-Central Asia Cooperation Forum be set up?", "003_07e049bc62076820.txt", "Korea Foundation"),
    ("Who is Kazakhstan's ambassador to Belgium?", "004_9ed8f173f51d1787.txt", "Margulan Baimukhan"),
])
def test_factual_questions_are_answered_from_the_right_document(engine, question, source, expected):
    a = engine.ask(question)
    assert not a.abstained
    assert a.citations[0].source == source
    assert expected in a.text


def test_english_question_finds_the_german_document_first(engine):
    hits, _, _ = engine.retrieve("What was said at the forum about Turkmenistan's neutrality?", 5)
    assert hits[0].chunk.source == "002_ddc9d047bacb3bd0.txt"


@pytest.mark.parametrize("question", [
    "What is the population of Kazakhstan?",
    "Who won the 2024 European football championship?",
])
def test_honest_abstention(engine, question):
    a = engine.ask(question)
    assert a.abstained
    assert "couldn't find" in a.text
    assert a.citations == []


def test_every_marker_points_at_a_listed_citation(engine):
    import re

    for q in (MEETING_Q, "What trade turnover target did Tokayev set?", "Wann hielt Präsident Tokajew seine Ansprache beim Forum?"):
        a = engine.ask(q)
        listed = {c.n for c in a.citations}
        assert {int(n) for n in re.findall(r"\[(\d+)\]", a.text)} <= listed


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_blank_question_is_rejected(engine, question):
    with pytest.raises(BadQuestion, match="empty"):
        engine.ask(question)


def test_huge_question_is_answered_with_a_note(engine):
    a = engine.ask(MEETING_Q + " " + "x" * 10_000)
    assert any("only the first" in n for n in a.notes)
    assert a.text  # an answer or an honest abstention, never a crash


def test_follow_up_uses_the_conversation(engine):
    first = engine.ask("Who is the Chairman of the Mazhilis?")
    follow = engine.ask("Which countries did he meet with?", history=[("Who is the Chairman of the Mazhilis?", first.text)])
    assert follow.retrieved[0] == "000_f95afc1178a02e7b.txt"
