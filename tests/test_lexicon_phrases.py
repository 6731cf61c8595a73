"""English terms of several words that German writes as one ("Middle East" → Nahost, "New Zealand"
→ Neuseeland): English questions over German text find them through the word lists' multi-word terms."""

import pytest

DOCS = {
    "gewuerze.txt": "Der Handel mit Nahost wuchs ab dem Jahr 1872 stark an. Die Händler brachten Gewürze, "
                    "Seide und Teppiche in die Hafenstadt.\n",
    "kaffee.txt": "Der Handel mit Südamerika wuchs ab dem Jahr 1905 stark an. Die Händler brachten Kaffee, "
                  "Kakao und Zucker in die Hafenstadt.\n",
    "wolle.txt": "Die Ausfuhr von Maschinen nach Neuseeland begann im Jahr 1883. Die Schiffe kehrten mit Wolle "
                 "zurück.\n",
    "kohle.txt": "Die Ausfuhr von Maschinen nach Kanada begann im Jahr 1897. Die Schiffe kehrten mit Holz "
                 "zurück.\n",
}


@pytest.fixture(scope="module")
def traders(tmp_path_factory, built):
    from rag.engine import Engine
    from rag.ingest import ingest_folder

    base = tmp_path_factory.mktemp("phrases")
    (base / "seeds").mkdir()
    for name, text in DOCS.items():
        (base / "seeds" / name).write_text(text, encoding="utf-8")
    settings = built.with_(seeds_dir=base / "seeds", index_dir=base / "index")
    ingest_folder(settings)
    return Engine(settings)


@pytest.mark.parametrize("question, source, year", [
    ("Since when did trade with the Middle East grow?", "gewuerze.txt", "1872"),  # the phrase list
    ("When did machine exports to New Zealand begin?", "wolle.txt", "1883"),  # CLDR country names
])
def test_a_multi_word_term_reaches_the_german_compound(traders, question, source, year):
    a = traders.ask(question)
    assert not a.abstained, a.text
    assert a.citations[0].source == source, a.text
    assert year in a.text
