"""English → German query translation with a bilingual word list (dictionary-based CLIR).

An English-only embedding model cannot match "points" with "Punkte"; a word list can. Each English
content word of a question is looked up by itself, or by its stem when the list lacks it, and its
German translations join the BM25 and n-gram queries (at the same weight as the question's own
words; half weight measured worse), as in classic dictionary-based cross-language retrieval
(Ballesteros & Croft 1997). The answerer's check of which question words a German sentence holds
reads every entry that shares the word's stem (its confidence scale was set that way). Names need no entry:
they match through the n-gram channel and stay untranslated. The answerer uses the same
translations to see which of the question's words a German sentence holds.

Three files: `lexicon_en_de.tsv`, written for this project (MIT), is drawn from the 10,000 most
frequent English content words of a general frequency list (8,848 kept once names of people, brands
and slang are left out; 5.0 German forms each, with the irregular verb forms German prose uses), plus
numbers, dates and units, chosen so that no evaluation set shaped it; `lexicon_phrases_en_de.tsv`
(MIT) holds common encyclopedic terms of several words; `lexicon_cldr_en_de.tsv` holds country,
language, month and weekday names from the Unicode CLDR (Unicode License v3; regenerate with
scripts/build_lexicon_cldr.py).

>>> sorted(translate(["points", "defense"], exact_first=True)["points"])
['punkte', 'punkten']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from rag.languages import fold, stem_words

LEXICON_FILE = Path(__file__).with_name("lexicon_en_de.tsv")
CLDR_FILE = Path(__file__).with_name("lexicon_cldr_en_de.tsv")  # country, language, month, day names
PHRASES_FILE = Path(__file__).with_name("lexicon_phrases_en_de.tsv")  # multi-word terms


_PIECES = re.compile(r"[\s\-‐]+")  # "Vereinigte Staaten", "Saudi-Arabien": the text's words are these pieces


@dataclass(frozen=True)
class _Tables:
    words: dict[str, frozenset[str]]  # English stem → folded German words
    exact: dict[str, frozenset[str]]  # folded English word of a one-word entry → its German words
    phrases: dict[tuple[str, ...], frozenset[str]]  # English stems of a multi-word term → German words


@functools.lru_cache(maxsize=4)
def _tables(extra: tuple[Path, ...] = ()) -> _Tables:
    """The shipped lists and any extra ones, split into one-word entries and multi-word terms."""
    pairs = []
    for path in (LEXICON_FILE, CLDR_FILE, PHRASES_FILE, *extra):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip() and not line.startswith("#") and "\t" in line:
                english, german = line.split("\t", 1)
                parts = [p for p in _PIECES.split(fold(english.strip())) if p]
                forms = {w for g in german.split("|") for w in _PIECES.split(fold(g.strip())) if w}
                if parts and forms:
                    pairs.append((parts, forms))
    stems = iter(stem_words([w for parts, _ in pairs for w in parts], "en"))
    words: dict[str, set[str]] = {}
    exact: dict[str, set[str]] = {}
    phrases: dict[tuple[str, ...], set[str]] = {}
    for parts, forms in pairs:
        key = tuple(next(stems) for _ in parts)
        if len(key) == 1:
            words.setdefault(key[0], set()).update(forms)
            exact.setdefault(parts[0], set()).update(forms)
        else:
            phrases.setdefault(key, set()).update(forms)
    return _Tables({k: frozenset(v) for k, v in words.items()}, {k: frozenset(v) for k, v in exact.items()},
                   {k: frozenset(v) for k, v in phrases.items()})


@functools.lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    tables = _tables(())
    return frozenset(tables.exact) | frozenset(w for forms in tables.words.values() for w in forms)


def is_common_word(word: str) -> bool:
    """Whether the shipped word lists know `word` as an English or German word (not as a name):
    they hold the 10,000 most frequent English content words with their German forms, and
    names of people were left out of them.

    >>> is_common_word("Economist"), is_common_word("Trainer"), is_common_word("Thomas")
    (True, True, False)
    """
    return fold(word) in _common()


def added_entries(extra: tuple[Path, ...] = ()) -> int:
    """How many English words and terms the extra lists add to the shipped ones (a glossary:
    hundreds; a general dictionary such as FreeDict eng-deu: tens of thousands)."""
    big, base = _tables(tuple(extra)), _tables(())
    return len(big.words) + len(big.phrases) - len(base.words) - len(base.phrases)


def translate(words: list[str], extra: tuple[Path, ...] = (), exact_first: bool = False) -> dict[str, frozenset[str]]:
    """Each folded English word that the word lists know → its German translations (folded).

    `words` in question order: a multi-word term ("middle east" → Nahost, "united states" →
    Vereinigte Staaten) adds its German words to each of its own words, since German often writes
    one compound where English writes two words.
    `extra`: more lists in the same format (RAG_LEXICON_FILES, e.g. from scripts/freedict_to_tsv.py).
    `exact_first`: a word the lists hold gets its own entry's translations only, not those of every
    entry sharing its stem ("extensive" → ausgedehnt, not the telephone Durchwahl of "extension"):
    retrieval uses it (XQuAD xl dev hit@1 0.826 → 0.852, both halves up)."""
    tables = _tables(tuple(extra))
    stems = stem_words(words, "en")
    out: dict[str, set[str]] = {}
    for word, stem in zip(words, stems):
        if found := (exact_first and tables.exact.get(word)) or tables.words.get(stem):  # "extensive" is not "extension"
            out.setdefault(word, set()).update(found)
    longest = max(map(len, tables.phrases), default=0)
    for n in range(2, longest + 1):
        for i in range(len(words) - n + 1):
            if found := tables.phrases.get(tuple(stems[i:i + n])):
                for word in words[i:i + n]:
                    out.setdefault(word, set()).update(found)
    return {k: frozenset(v) for k, v in out.items()}
