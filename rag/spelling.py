"""Read a misspelt question word as the document word one slip away ("Ghandi" → "Gandhi").

Users type fast. A misspelt name finds no document word, so the answer loses its best evidence
and the confidence counts the name as a key entity the documents lack: the bot refuses ("What
was Ghandi's work called?"). A word is re-read only when
- no document holds it in any inflection and it is no stop word,
- it has MIN_LETTERS letters or more, and no capital but the first (an acronym or an identifier
  such as "PTENP" or "BSkyB" is spelt as meant),
- the dictionary of the question's language does not know it (pyspellchecker's, MIT: 160,000
  English and 340,000 German words; both when the language is unclear): a real word that the
  documents lack is the abstention's signal, not a slip ("place" is not "plane"), and
- a document word is one slip away: a letter deleted, inserted, replaced by a neighbouring key,
  swapped with its neighbour or moved, never the first letter (slips there are rare, and
  re-reading them turns names into other words: "Aaron" / "Taron"). Among several, the one most
  chunks hold; a tie re-reads nothing.
The engine shows each re-reading as a note, so the user sees what was asked.

>>> held = {"gandhi": 4}
>>> respell("What was Ghandi's work called?", lambda ws: [(held.get(w, 0), w) for w in ws], lambda w, lang: False)
("What was Gandhi's work called?", [('Ghandi', 'Gandhi')])
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from rag.languages import STOPWORDS_DE, STOPWORDS_EN, fold, guess_language

# Shorter words have too many neighbours one slip away ("kind" / "king", "Mark" / "mask"): a
# right word and a slip cannot be told apart.
MIN_LETTERS = 5
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# A replaced letter is a neighbouring key (QWERTY, and QWERTZ's z): a hand slips to the next key.
# Any letter for any other is a different word more often than a slip ("Kiewer" / "Kiefer",
# "Börte" / "Berte").
_ROWS = ("qwertzuiop", "asdfghjkl", "yxcvbnm", "zxcvbnm", "qwertyuiop")


def _neighbours() -> dict[str, str]:
    near: dict[str, set[str]] = {c: set() for c in _LETTERS}
    for rows in (_ROWS[4], _ROWS[1], _ROWS[3]), (_ROWS[0], _ROWS[1], _ROWS[2]):
        for r, row in enumerate(rows):
            for i, c in enumerate(row):
                near[c] |= {row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)}
                for other in (rows[r - 1] if r else "", rows[r + 1] if r + 1 < len(rows) else ""):
                    near[c] |= {other[j] for j in (i - 1, i, i + 1) if 0 <= j < len(other)}
    return {c: "".join(sorted(v)) for c, v in near.items()}


_NEAR = _neighbours()
_WORD = re.compile(r"[^\W\d_]+")


def _slips(word: str) -> list[str]:
    """Every string one slip from `word` that keeps its first letter, the likelier slips first: a
    letter swapped with its neighbour, deleted, inserted, replaced by a neighbouring key (Norvig's
    edits, the last one narrowed), or moved ("ghandi" → "gandhi": two edits for Levenshtein, one
    slip of the hand)."""
    head, tail = word[0], word[1:]
    splits = [(tail[:i], tail[i:]) for i in range(len(tail) + 1)]
    out = [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    out += [a + b[1:] for a, b in splits if b]
    out += [a + c + b for a, b in splits for c in _LETTERS]
    out += [a + c + b[1:] for a, b in splits if b for c in _NEAR.get(b[0], "")]
    for i, c in enumerate(tail):
        rest = tail[:i] + tail[i + 1:]
        out += [rest[:j] + c + rest[j:] for j in range(len(rest) + 1)]
    return [head + t for t in dict.fromkeys(out) if head + t != word]


@functools.cache
def _dictionary(language: str):
    from spellchecker import SpellChecker  # 0.1 s and 15 MB (en), 0.3 s and 30 MB (de): loaded
    # on the first question with a would-be slip, for its language only

    return SpellChecker(language=language, distance=1)


def is_word(word: str, language: str = "und") -> bool:
    """Whether the dictionary of `language` ("en" or "de"; both for any other) knows `word`."""
    languages = (language,) if language in ("en", "de") else ("en", "de")
    return any(word in _dictionary(lang) for lang in languages)


def _cased_like(word: str, model: str) -> str:
    return word[0].upper() + word[1:] if model[0].isupper() else word


# How many chunks hold each word in some inflection, and the stem they hold.
Counts = Callable[[list[str]], list[tuple[int, str]]]


def correction(word: str, chunks_holding: Counts) -> str | None:
    """The word one slip from `word` that the most chunks hold, or None (none, or two different
    words tie). Slips that reach the same stem ("pokalfinale", "pokalfinael") are one word: the
    likelier slip is taken."""
    candidates = _slips(fold(word))
    found = chunks_holding(candidates)
    top = max((n for n, _ in found), default=0)
    best = [(c, st) for c, (n, st) in zip(candidates, found) if n == top]
    if top <= 0 or len({st for _, st in best}) > 1:
        return None
    return _cased_like(best[0][0], word)


def respell(question: str, chunks_holding: Counts,
            known: Callable[[str, str], bool] = is_word) -> tuple[str, list[tuple[str, str]]]:
    """`question` with each slip re-read (see the module's docstring) and the (typed, read) pairs.
    `chunks_holding`: see `Counts`; `known`: whether
    a word is in the dictionary of a language (asked last: it loads the dictionary)."""
    language = guess_language(question)
    words = {m.group(0) for m in _WORD.finditer(question)}
    words = sorted(w for w in words if len(w) >= MIN_LETTERS and w[1:].islower()  # stop words are
                   and fold(w) not in STOPWORDS_EN and fold(w) not in STOPWORDS_DE)  # never indexed
    absent = [w for w, (n, _) in zip(words, chunks_holding([fold(w) for w in words])) if n == 0]
    read = {w: better for w in absent if (better := correction(w, chunks_holding)) and not known(w, language)}
    changed = list(dict.fromkeys((m.group(0), read[m.group(0)]) for m in _WORD.finditer(question) if m.group(0) in read))
    return _WORD.sub(lambda m: read.get(m.group(0), m.group(0)), question), changed
