"""English → German query translation with a bilingual word list (dictionary-based CLIR).

An English-only embedding model cannot match "points" with "Punkte"; a word list can. Each English
content word of a question is looked up by its stem and its German translations join the BM25 and
n-gram queries (at the same weight as the question's own words; half weight measured worse), as in
classic dictionary-based cross-language retrieval (Ballesteros & Croft 1997). Names need no entry:
they match through the n-gram channel and stay untranslated. The answerer uses the same
translations to see which of the question's words a German sentence holds.

Two files: `lexicon_en_de.tsv`, written for this project (MIT), covers the 2,000 most frequent
English content words by a general frequency list, plus numbers, dates and units, chosen so that
no evaluation set shaped it; `lexicon_cldr_en_de.tsv` holds country, language, month and weekday
names from the Unicode CLDR (Unicode License v3; regenerate with scripts/build_lexicon_cldr.py).

>>> sorted(translate(["points", "defense"])["points"])
['punkt', 'punkte']
"""

from __future__ import annotations

import functools
from pathlib import Path

from rag.languages import fold, stem_words

LEXICON_FILE = Path(__file__).with_name("lexicon_en_de.tsv")
CLDR_FILE = Path(__file__).with_name("lexicon_cldr_en_de.tsv")  # country, language, month, day names


@functools.lru_cache(maxsize=4)
def _table(extra: tuple[Path, ...] = ()) -> dict[str, frozenset[str]]:
    """English stem → folded German words, from the shipped lists and any extra ones."""
    pairs = []
    for path in (LEXICON_FILE, CLDR_FILE, *extra):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.startswith("#") and "\t" in line:
                english, german = line.split("\t", 1)
                pairs.append((fold(english.strip()), german))
    out: dict[str, set[str]] = {}
    for stem, (_, german) in zip(stem_words([e for e, _ in pairs], "en"), pairs):
        out.setdefault(stem, set()).update(fold(g.strip()) for g in german.split("|") if g.strip())
    return {k: frozenset(v) for k, v in out.items()}


def added_entries(extra: tuple[Path, ...] = ()) -> int:
    """How many English words the extra lists add to the shipped ones (a glossary: hundreds; a
    general dictionary such as FreeDict eng-deu: tens of thousands)."""
    return len(_table(tuple(extra))) - len(_table(()))


def translate(words: list[str], extra: tuple[Path, ...] = ()) -> dict[str, frozenset[str]]:
    """Each folded English word that the word lists know → its German translations (folded).
    `extra`: more lists in the same format (RAG_LEXICON_FILES, e.g. from scripts/freedict_to_tsv.py)."""
    table = _table(tuple(extra))
    out = {}
    for word, stem in zip(words, stem_words(words, "en")):
        found = table.get(stem)
        if found:
            out[word] = found
    return out
