"""Read a misspelt question word as the document word one slip away ("Ghandi" → "Gandhi").

Users type fast. A misspelt name finds no document word, so the answer loses its best evidence
and the confidence counts the name as a key entity the documents lack: the bot refuses ("What
was Ghandi's work called?"). A word is re-read only when
- it stands alone: no digit, "_", "/", "@" or "." inside its run of characters (identifiers,
  URLs and mail addresses are spelt as meant), no capital but the first ("PTENP", "BSkyB"),
  MIN_LETTERS to MAX_LETTERS letters, and no stop word;
- no document holds it in any inflection;
- neither the English nor the German dictionary knows it, British spellings included
  (pyspellchecker's word lists, MIT: a real word that the documents lack is what the question is
  about, not a slip: "place" is not "plane", "centre" is not "center");
- a document word is one slip away, never at the first letter (slips there are rare, and
  re-reading them turns names into other words: "Aaron" / "Taron"): a letter deleted, inserted,
  replaced by a neighbouring key, or moved up to MAX_MOVE places ("Ghandi" → "Gandhi", a swap of
  neighbours being the shortest move). An ending is not a slip: dropping a last letter, or a
  reading whose stem the typed word merely extends, unless that reading is a dictionary word; a
  name's female or transliterated form ("Aliyeva", "Berdimuhamedow") stays as typed. Of several
  words, the one most chunks hold; two different words that tie leave the question as typed.
The engine shows each re-reading as a note, so the user sees how the question was read.

>>> held = {"gandhi": 4}
>>> respell("What was Ghandi's work called?", lambda ws: [(held.get(w, 0), w) for w in ws], lambda w: False)
("What was Gandhi's work called?", [Reading(typed='Ghandi', read='Gandhi')])
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rag.languages import STOPWORDS_DE, STOPWORDS_EN, fold

# Shorter words have too many neighbours one slip away ("kind" / "king", "Mark" / "mask"): a
# right word and a slip cannot be told apart. A longer run of letters is no word anyone typed
# (and its slips would grow with its length).
MIN_LETTERS, MAX_LETTERS = 5, 40
MAX_MOVE = 3  # "ghandi" → "gandhi" moves the h three places
MAX_WORDS = 8  # words per question looked at: a flood of non-words costs a bounded time
_LETTERS = "abcdefghijklmnopqrstuvwxyzäöüß"
# A replaced letter is a neighbouring key (QWERTY and QWERTZ): a hand slips to the next key. Any
# letter for any other is a different word more often than a slip ("Kiewer" / "Kiefer").
_ROWS = ("qwertzuiopü", "asdfghjklöä", "yxcvbnm", "zxcvbnm", "qwertyuiop")
_RUN = re.compile(r"\S+")
_WORD = re.compile(r"[^\W\d_]+")
_NOT_A_WORD = re.compile(r"[\d_/@.]")  # in a run of characters: an identifier, a URL, an address
# British spellings the (American) English word list lacks, as endings: centre, colour,
# organisation, analyse, catalogue, travelled, defence.
_BRITISH = (("tre", "ter"), ("tres", "ters"), ("our", "or"), ("ours", "ors"), ("ise", "ize"),
            ("ised", "ized"), ("ises", "izes"), ("ising", "izing"), ("isation", "ization"),
            ("isations", "izations"), ("yse", "yze"), ("ysed", "yzed"), ("ysing", "yzing"),
            ("ogue", "og"), ("ogues", "ogs"), ("elled", "eled"), ("elling", "eling"),
            ("ller", "ler"), ("ence", "ense"))


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


@dataclass(frozen=True)
class Reading:
    """A question word as typed and as the engine read it."""

    typed: str
    read: str


def _slips(word: str) -> list[str]:
    """Every string one slip from `word` (lower case, accents kept) that keeps its first letter,
    the likelier slips first: a letter moved one place (a swap), deleted (not the last), inserted,
    replaced by a neighbouring key, or moved two or more places. About 40 × its length."""
    head, tail = word[0], word[1:]
    splits = [(tail[:i], tail[i:]) for i in range(len(tail) + 1)]
    moves = []
    for i, c in enumerate(tail):
        rest = tail[:i] + tail[i + 1:]
        moves += [(abs(j - i), rest[:j] + c + rest[j:]) for j in range(max(0, i - MAX_MOVE), min(len(rest), i + MAX_MOVE) + 1)]
    out = [m for d, m in moves if d == 1]
    out += [a + b[1:] for a, b in splits if len(b) > 1]
    out += [a + c + b for a, b in splits for c in _LETTERS]
    out += [a + c + b[1:] for a, b in splits if b for c in _NEAR.get(b[0], "")]
    out += [m for d, m in sorted(moves) if d > 1]
    return [head + t for t in dict.fromkeys(out) if head + t != word]


# How many chunks hold each word in some inflection, and the stem they hold.
Counts = Callable[[list[str]], list[tuple[int, str]]]


def correction(word: str, chunks_holding: Counts, known: Callable[[str], bool]) -> str | None:
    """The word one slip from `word` that the most chunks hold, or None (none, or two different
    words tie). Slips that reach the same stem ("pokalfinale", "pokalfinael") are one word: the
    likelier slip is taken. Accents are kept as typed ("Präsidnet" → "Präsident").

    A stem that `word` merely extends is an ending, not a slip: "Aliyeva" + "l" stems to the
    documents' "aliyev", but she is not him. Such a reading stands only when it is a dictionary
    word (`known`): "agenchy" → "agency"."""
    candidates = _slips(word.lower())  # not casefold: it writes ß as ss
    found = chunks_holding([fold(c) for c in candidates])
    top = max((n for n, _ in found), default=0)
    best = [(c, st) for c, (n, st) in zip(candidates, found) if n == top]
    if top <= 0 or len({st for _, st in best}) > 1:
        return None
    read, stem = best[0]
    if fold(word).startswith(stem) and not known(read):
        return None
    return read[0].upper() + read[1:] if word[0].isupper() else read


class Dictionaries:
    """The English and German word lists, loaded once on first use (0.5 s, about 60 MB), by one
    thread while the others wait: the engine owns one and `warm_up` loads it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._words: frozenset[str] | None = None

    def _load(self) -> frozenset[str]:
        if self._words is None:
            with self._lock:
                if self._words is None:
                    from spellchecker import SpellChecker

                    self._words = frozenset(w for lang in ("en", "de")
                                            for w in SpellChecker(language=lang, distance=1).word_frequency.keys())
        return self._words

    def knows(self, word: str) -> bool:
        """Whether either dictionary knows `word` (any case), or it is a British spelling of a
        word the English one knows."""
        words = self._load()
        w = word.lower()  # the lists write ß ("heißen"), which casefold() would make "ss"
        return w in words or any(w.endswith(gb) and w[:-len(gb)] + us in words for gb, us in _BRITISH)


def respell(question: str, chunks_holding: Counts, known: Callable[[str], bool]) -> tuple[str, list[Reading]]:
    """`question` with each slip re-read (see the module's docstring) and the readings, once per
    word whatever its case. `chunks_holding`: see `Counts`; `known`: a dictionary word (asked
    last: it loads the dictionaries)."""
    words: dict[str, str] = {}  # casefolded → as first typed
    for run in _RUN.findall(question):
        if not _plain(run):
            continue
        for w in _WORD.findall(run):
            if (MIN_LETTERS <= len(w) <= MAX_LETTERS and w[1:].islower()
                    and fold(w) not in STOPWORDS_EN and fold(w) not in STOPWORDS_DE):
                words.setdefault(w.casefold(), w)
    typed = list(words.values())
    absent = [w for w, (n, _) in zip(typed, chunks_holding([fold(w) for w in typed])) if n == 0][:MAX_WORDS]
    read = {w.casefold(): better for w in absent
            if (better := correction(w, chunks_holding, known)) and not known(w)}
    if not read:
        return question, []
    readings = [Reading(words[k], r) for k, r in read.items()]

    def fix(m: re.Match) -> str:
        word = m.group(0)
        better = read.get(word.casefold())
        if better is None or not word[1:].islower():  # "GHANDI" was not read (see above)
            return word
        return better[0].upper() + better[1:] if word[0].isupper() else better.lower()

    return _RUN.sub(lambda run: _WORD.sub(fix, run.group(0)) if _plain(run.group(0)) else run.group(0), question), readings


def _plain(run: str) -> bool:
    """Whether a run of characters between spaces is words and punctuation, not an identifier,
    a URL or an address ("Tokaeyv2", "example.org/Tokaev", "a@b.kz")."""
    return not _NOT_A_WORD.search(re.sub(r"^[\W_]+|[\W_]+$", "", run))
