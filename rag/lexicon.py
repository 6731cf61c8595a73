"""English → German query translation with a bilingual word list (dictionary-based CLIR).

An English-only embedding model cannot match "points" with "Punkte"; a word list can. Each English
content word of a question is looked up by its stem in `lexicon_en_de.tsv` (general vocabulary
written for this project, MIT like the rest of it) and its German translations join the BM25 and
n-gram queries over German chunks with a lower weight, as in classic dictionary-based
cross-language retrieval (Ballesteros & Croft 1997). Names need no entry: they match through the
n-gram channel and stay untranslated. The answerer uses the same translations to see which of the
question's words a German sentence holds.

>>> sorted(translate(["points", "defense"])["points"])
['punkt', 'punkte']
"""

from __future__ import annotations

import functools
from pathlib import Path

from rag.languages import fold, stem_words

LEXICON_FILE = Path(__file__).with_name("lexicon_en_de.tsv")


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, frozenset[str]]:
    """English stem → folded German words."""
    out: dict[str, set[str]] = {}
    for line in LEXICON_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or "\t" not in line:
            continue
        english, german = line.split("\t", 1)
        stem = stem_words([fold(english.strip())], "en")[0]
        out.setdefault(stem, set()).update(fold(g.strip()) for g in german.split("|") if g.strip())
    return {k: frozenset(v) for k, v in out.items()}


def translate(words: list[str]) -> dict[str, frozenset[str]]:
    """Each folded English word that the word list knows → its German translations (folded)."""
    table = _table()
    out = {}
    for word, stem in zip(words, stem_words(words, "en")):
        found = table.get(stem)
        if found:
            out[word] = found
    return out
