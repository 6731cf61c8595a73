"""Citation markers in an LLM's reply: normalise every common shape, then renumber (pure).

Models write markers in many shapes: `[1]`, `[ 1 ]`, `[1, 2]`, `[2-3]`, `[Source 1]`, `[^1]`,
`【2】`, `【4:0†source】`, `［3］`. `MarkerNormaliser` turns each into canonical `[n]` markers that
number the *retrieved sources* (1..n_sources), one per source, in the order written. A marker
that cannot be mapped (a number out of range, `[Source A]`, `[source]`) is dropped and recorded,
so the note can say so; brackets that are not markers (`[sic]`, `array[i]`) are left alone.

After verification the engine renumbers what it shows with `Renumberer`: the sources actually
cited become 1..k in order of first appearance, so `[1]` is always the first source listed.

Both work on text arriving in pieces (an unfinished `[Sou` is held back until it closes), so
streamed text and the final text agree.

>>> n = MarkerNormaliser(n_sources=3); n.feed("A [Source 3] and B [9][ 1 ]."), n.finish(), n.dropped
('A [3] and B [1].', '', ['9'])
>>> Renumberer().apply("B [3][1], again [3].")
'B [1][2], again [1].'
"""

from __future__ import annotations

import re
import unicodedata

_OPEN_CHARS, _CLOSE_CHARS = "[【［〔", "]】］〕"
_OPEN, _CLOSE = r"\[【［〔", r"\]】］〕"  # for use inside a character class
_LABEL = (
    r"(?:sources?|src|docs?|documents?|refs?|references?|citations?|cite|passages?|quellen?|fuentes?)"
)
_NUM = r"[0-9０-９]{1,4}"
_ITEM = rf"(?:{_LABEL}\s{{0,2}}[#:.]?\s{{0,2}})?{_NUM}(?:\s{{0,2}}[-–—~]\s{{0,2}}(?:{_LABEL}\s{{0,2}}[#:.]?\s{{0,2}})?{_NUM})?"
_SEP = r"\s{0,2}(?:[,;&、，]|\band\b|\bund\b|\bet\b|\by\b)\s{0,2}"
# 【4:0†source】 (OpenAI file search) and similar tails after the number.
_TAIL = rf"(?:\s{{0,2}}[:†][^{_CLOSE}\n\[]{{0,40}})?"
MARKER = re.compile(
    rf"[{_OPEN}]\s{{0,3}}\^?\s{{0,2}}(?P<items>{_ITEM}(?:{_SEP}{_ITEM}){{0,5}}){_TAIL}\s{{0,3}}[{_CLOSE}]",
    re.IGNORECASE,
)
# Looks like a marker but names no usable number: [Source A], [source], [^a], [doc x].
_UNMAPPABLE = re.compile(
    rf"[{_OPEN}]\s{{0,3}}(?:\^\s{{0,2}}\w{{1,12}}|{_LABEL}(?:\s{{0,2}}[#:.]?\s{{0,2}}[^{_CLOSE}\[\n]{{0,12}})?)\s{{0,3}}[{_CLOSE}]",
    re.IGNORECASE,
)
HOLD = 400  # longer than any marker the grammar accepts (six items at most)
_ANY = re.compile(f"{MARKER.pattern}|{_UNMAPPABLE.pattern}", re.IGNORECASE)  # one pass: drops stay in order
# An unfinished marker at the end of the text (held back in a stream, dropped at the end).
_OPEN_TAIL = re.compile(rf"[{_OPEN}][^{_CLOSE}\n]{{0,{HOLD}}}$")
_MARKER_PREFIX = re.compile(
    rf"[{_OPEN}]\s*\^?\s*(?:[^\W\d_]{{0,12}}\s*[#:.]?\s*)?[0-9０-９,;\-–—~&\s]*(?:[:†][^{_CLOSE}\n]*)?$"
)
CANONICAL = re.compile(r"\[(\d+)\]")


def _numbers(items: str, n_sources: int) -> tuple[list[int], list[str]]:
    """Source numbers named by a marker's items ('1, 3-4' → [1, 3, 4]) and the parts dropped."""
    items = unicodedata.normalize("NFKC", items)
    keep: list[int] = []
    dropped: list[str] = []
    for part in re.split(_SEP, items, flags=re.IGNORECASE):
        nums = [int(x) for x in re.findall(r"\d+", part)]
        if len(nums) == 2:  # a range
            a, b = nums
            if 1 <= a <= b <= n_sources:
                keep.extend(range(a, b + 1))
            else:
                dropped.append(f"{a}-{b}")
            continue
        for x in nums:
            (keep.append(x) if 1 <= x <= n_sources else dropped.append(str(x)))
    return keep, dropped


class MarkerNormaliser:
    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self.dropped: list[str] = []  # what was removed, as written ('9', 'Source A')
        self._pending = ""

    def _replace(self, m: re.Match) -> str:
        keep, dropped = _numbers(m.group("items"), self.n_sources)
        self.dropped += dropped
        return "".join(f"[{n}]" for n in dict.fromkeys(keep))

    def _drop(self, m: re.Match) -> str:
        self.dropped.append(m.group(0).strip(_OPEN_CHARS + _CLOSE_CHARS + " "))
        return ""

    def _normalise(self, text: str) -> str:
        return _ANY.sub(lambda m: self._replace(m) if m.group("items") is not None else self._drop(m), text)

    def feed(self, piece: str) -> str:
        """Normalise as much as is complete; hold back an unfinished '[Sour'."""
        buf = self._pending + piece
        m = _OPEN_TAIL.search(buf, max(0, len(buf) - HOLD - 1))
        cut = m.start() if m else len(buf)
        # A bracket still open may hold a marker that began before it ('[1, [2' is not one).
        out, self._pending = buf[:cut], buf[cut:]
        return self._normalise(out)

    def finish(self) -> str:
        """The rest; an unfinished marker at the very end (a reply cut short) is dropped."""
        rest, self._pending = self._pending, ""
        rest = self._normalise(rest)
        m = _MARKER_PREFIX.search(rest)
        if m:
            self.dropped.append(m.group(0).strip(_OPEN_CHARS + " ") or "[")
            rest = rest[: m.start()].rstrip()
        return rest


class Renumberer:
    """Renumber canonical markers by first appearance; remembers the mapping across calls."""

    def __init__(self) -> None:
        self.mapping: dict[int, int] = {}  # source number → shown number

    def _sub(self, m: re.Match) -> str:
        n = int(m.group(1))
        if n not in self.mapping:
            self.mapping[n] = len(self.mapping) + 1
        return f"[{self.mapping[n]}]"

    def apply(self, text: str) -> str:
        out = CANONICAL.sub(self._sub, text)
        return re.sub(r"(\[\d+\])(?:\1)+", r"\1", out)  # '[1][1]' after merging two sources' numbers

    def cited(self) -> list[int]:
        """Source numbers in their shown order."""
        return sorted(self.mapping, key=self.mapping.__getitem__)


def markers(text: str) -> list[int]:
    """Canonical marker numbers in a normalised text, in order, without repeats."""
    return list(dict.fromkeys(int(x) for x in CANONICAL.findall(text)))


def strip_markers(text: str) -> str:
    """The text without its canonical markers, spaces tidied ('word [1].' → 'word.')."""
    return tidy(CANONICAL.sub("", text))


def tidy(text: str) -> str:
    """Runs of spaces made one and no space before punctuation, as left by removed markers."""
    return re.sub(r"[ \t]+([.,;:!?。])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()

