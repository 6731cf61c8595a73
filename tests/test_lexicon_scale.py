"""Which confidence scale an English question over German text gets with extra word lists
(review 3, #8): a user's glossary must not make the bot refuse what it answers without one."""

import pytest

from rag.engine import Engine

QUESTION = "Which countries attended the neutrality forum?"  # over the seeds' German document


def _word_list(path, n):
    """n English→German entries that no question here uses (a domain glossary, or a dictionary's bulk)."""
    path.write_text("# a user's word list\n" + "".join(f"widgetpart{i}\tbauteil{i}\n" for i in range(n)), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def plain(built):
    a = Engine(built).ask(QUESTION)
    assert not a.abstained and a.citations[0].source == "002_ddc9d047bacb3bd0.txt", a.text
    assert 0 < a.confidence < 1  # not clipped, so a change of scale shows
    return a


def test_a_small_glossary_keeps_the_confidence_of_the_shipped_word_lists(built, plain, tmp_path):
    glossary = _word_list(tmp_path / "glossary.tsv", 200)
    a = Engine(built.with_(lexicon_files=(glossary,))).ask(QUESTION)
    assert not a.abstained, a.text
    assert a.confidence == pytest.approx(plain.confidence)


def test_a_dictionary_sized_word_list_switches_to_the_large_list_scale(built, plain, tmp_path):
    from rag.answer import CROSS_SCALE_LARGE_LEXICON, LARGE_LEXICON_ENTRIES, SITUATION_SCALE

    big = _word_list(tmp_path / "dictionary.tsv", LARGE_LEXICON_ENTRIES)
    a = Engine(built.with_(lexicon_files=(big,))).ask(QUESTION)
    expected = plain.confidence * CROSS_SCALE_LARGE_LEXICON / SITUATION_SCALE["cross"]
    assert a.confidence == pytest.approx(min(expected, 1.0))
