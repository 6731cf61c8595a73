"""Which question words are read as a document word one slip away (rag.spelling).

The document counts here are a plain table; the dictionary is pyspellchecker's real one.
"""

from __future__ import annotations

import pytest

from rag.spelling import respell


def counts(held: dict[str, int]):
    """chunks_holding over a table of document words (each its own stem)."""
    return lambda words: [(held.get(w, 0), w) for w in words]


@pytest.mark.parametrize("question, held, read", [
    ("What was Ghandi's work called?", {"gandhi": 3}, "Gandhi"),                 # a letter moved
    ("When was the Maastrich Treaty signed?", {"maastricht": 2}, "Maastricht"),  # a letter left out
    ("When did Galor and Zeria publish?", {"zeira": 1}, "Zeira"),                # neighbours swapped
    ("What platform was Sentanta Sports on?", {"setanta": 4}, "Setanta"),        # a letter too many
    ("What did the parliment hear?", {"parliament": 9}, "parliament"),
    ("Who lives in Bwrlin?", {"berlin": 9}, "Berlin"),                           # the next key (e → w)
])
def test_a_slip_is_read_as_the_document_word(question, held, read):
    text, changed = respell(question, counts(held))
    assert [r for _, r in changed] == [read]
    assert read in text


@pytest.mark.parametrize("question, held", [
    ("Where is Kiewer Rus?", {"kiefer": 5}),        # w → f: not neighbouring keys
    ("Where is Hbendigo?", {"bendigo": 5}),         # never the first letter
    ("Who founded the bakers guild?", {"bakery": 5}),  # "bakers" is a word
    ("Who is Zeir?", {"zeira": 5}),                 # under five letters
    ("How is PTENP expressed?", {"pten": 5}),       # an identifier, spelt as meant
    ("Who was Manning's rival?", {"manning": 0, "mannin": 0}),  # nothing one slip away
    ("What about Brenan?", {"brennan": 2, "breman": 2}),        # two words tie
    ("What about Brennan?", {"brennan": 2, "brenan": 2}),       # the documents hold it as typed
])
def test_a_word_is_kept_as_typed(question, held):
    assert respell(question, counts(held)) == (question, [])


def test_slips_to_the_same_stem_are_one_word():
    """"Pokalfinlae": "Pokalfinale" (a swap) and "Pokalfinael" (a move) are the same word to the
    index, so they do not tie; the likelier slip is the one shown."""
    stems = {"pokalfinale": "pokalfinal", "pokalfinael": "pokalfinal"}
    text, changed = respell("Wann fand das Pokalfinlae statt?",
                            lambda ws: [(3, stems[w]) if w in stems else (0, w) for w in ws])
    assert changed == [("Pokalfinlae", "Pokalfinale")]
