"""Which question words are read as a document word one slip away (rag.spelling).

The document counts here are a plain table; the dictionaries are pyspellchecker's real ones.
"""

from __future__ import annotations

import random

import pytest

from rag.spelling import Dictionaries, Reading, respell

DICTIONARIES = Dictionaries()


def counts(held: dict[str, int]):
    """chunks_holding over a table of document words (each its own stem)."""
    return lambda words: [(held.get(w, 0), w) for w in words]


def read(question: str, held: dict[str, int]) -> tuple[str, list[Reading]]:
    return respell(question, counts(held), DICTIONARIES.knows)


@pytest.mark.parametrize("question, held, word", [
    ("What was Ghandi's work called?", {"gandhi": 3}, "Gandhi"),                 # a letter moved
    ("When was the Maastrich Treaty signed?", {"maastricht": 2}, "Maastricht"),  # a letter left out
    ("When did Galor and Zeria publish?", {"zeira": 1}, "Zeira"),                # neighbours swapped
    ("What platform was Sentanta Sports on?", {"setanta": 4}, "Setanta"),        # a letter too many
    ("What did the parliment hear?", {"parliament": 9}, "parliament"),
    ("Who lives in Bwrlin?", {"berlin": 9}, "Berlin"),                           # the next key (e → w)
    ("Wie steht es um die Neutrlität?", {"neutralitat": 3}, "Neutralität"),      # accents kept
])
def test_a_slip_is_read_as_the_document_word(question, held, word):
    text, readings = read(question, held)
    assert [r.read for r in readings] == [word]
    assert word in text


@pytest.mark.parametrize("question, held", [
    ("Where is Kiewer Rus?", {"kiefer": 5}),        # w → f: not neighbouring keys
    ("Where is Hbendigo?", {"bendigo": 5}),         # never the first letter
    ("Who founded the bakers guild?", {"bakery": 5}),  # "bakers" is an English word
    ("Was sagte Präsident Tokajew über Frieden?", {"stage": 5}),  # "sagte" is a German word
    ("Wie heißen die Moleküle?", {"hiessen": 5}),   # so is "heißen", with its ß
    ("Where is the city centre?", {"center": 5}),   # a British spelling is a word too
    ("Who is Zeir?", {"zeira": 5}),                 # under five letters
    ("How is PTENP expressed?", {"pten": 5}),       # an identifier, spelt as meant
    ("See tokaev.kz/news or Tokaev2", {"tokayev": 5}),  # a URL, an identifier
    ("Who is Aliyeva?", {"aliyev": 5}),             # an ending, not a slip: her name
    ("Who was Manning's rival?", {}),               # nothing one slip away
    ("What about Brenan?", {"brennan": 2, "breman": 2}),  # two words tie
    ("What about Brenan?", {"brennan": 2, "brenan": 5}),  # the documents hold it as typed
])
def test_a_word_is_kept_as_typed(question, held):
    assert read(question, held) == (question, [])


def stemmed(held: dict[str, int]):
    """chunks_holding over a table of document stems, through the real English stemmer."""
    from rag.languages import stem_words

    return lambda words: [(held.get(st, 0), st) for st in stem_words(words, "en")]


def test_an_ending_the_documents_lack_is_not_a_slip_unless_the_reading_is_a_word():
    """"Aliyeva" + "l" stems to the documents' "aliyev": an ending of a name, not a slip, and she is
    not him. "agenchy" also extends the stem "agenc", but "agency" is a word, so it is read."""
    assert respell("What did Aliyeva say?", stemmed({"aliyev": 4}), DICTIONARIES.knows) == ("What did Aliyeva say?", [])
    assert respell("Which agenchy checked it?", stemmed({"agenc": 4}), DICTIONARIES.knows)[1] == [Reading("agenchy", "agency")]


def test_a_word_with_an_inner_capital_is_spelt_as_meant():
    assert read("Who founded McDonlad's?", {"mcdonald": 5}) == ("Who founded McDonlad's?", [])


def test_slips_to_the_same_stem_are_one_word():
    """"Pokalfinlae": "Pokalfinale" (a swap) and "Pokalfinael" (a move) are the same word to the
    index, so they do not tie; the likelier slip is the one shown."""
    stems = {"pokalfinale": "pokalfinal", "pokalfinael": "pokalfinal"}
    text, readings = respell("Wann fand das Pokalfinlae statt?",
                             lambda ws: [(3, stems[w]) if w in stems else (0, w) for w in ws], DICTIONARIES.knows)
    assert readings == [Reading("Pokalfinlae", "Pokalfinale")]


def test_a_word_typed_twice_is_read_once_in_its_own_case():
    text, readings = read("Ghandi or ghandi?", {"gandhi": 3})
    assert (text, readings) == ("Gandhi or gandhi?", [Reading("Ghandi", "Gandhi")])


def test_a_question_of_non_words_costs_bounded_work():
    """2,000 characters of non-words, or one 2,000-letter word, look up at most a few thousand
    would-be words (one slip of a word costs ~40 × its length; a word has at most 40 letters and
    at most 8 words are looked at)."""
    rng = random.Random(7)
    noise = " ".join("".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(5, 30)))
                     for _ in range(120))[:2000]
    for question in (noise, "q" + "w" * 1999):
        asked = []

        def holding(words, asked=asked):
            asked.extend(words)
            return [(0, w) for w in words]

        assert respell(question, holding, DICTIONARIES.knows) == (question, [])
        assert len(asked) < 20_000, len(asked)


def test_the_dictionaries_load_once_when_many_threads_ask_first(monkeypatch):
    """The bot's worker threads may all meet their first slip at once: one loads, the rest wait."""
    import threading

    import spellchecker

    made, real = [], spellchecker.SpellChecker.__init__
    monkeypatch.setattr(spellchecker.SpellChecker, "__init__",
                        lambda self, *a, **k: made.append(1) or real(self, *a, **k))
    dictionaries = Dictionaries()
    threads = [threading.Thread(target=dictionaries.knows, args=("Gandhi",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 2  # English and German, once each
