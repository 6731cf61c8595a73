"""Validate and renumber an LLM's citation markers (pure).

Markers that point at no source are dropped; the sources actually cited are renumbered 1..k in
order of first appearance, and only those are listed. Renumbering is incremental, so a streamed
answer can be rewritten token by token and the streamed text equals the final text.

>>> r = Renumberer(n_sources=3); r.feed("A [3] and B [9][1]."), r.finish()
('A [1] and B [2].', '')
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_OPEN = re.compile(r"\[[\d,\s]*$")


class Renumberer:
    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self.mapping: dict[int, int] = {}  # original source number → new number
        self.dropped: list[int] = []
        self._pending = ""

    def _replace(self, m: re.Match) -> str:
        out = []
        for part in m.group(1).split(","):
            n = int(part)
            if not 1 <= n <= self.n_sources:
                self.dropped.append(n)
                log.info("dropped citation marker [%d]: only %d sources", n, self.n_sources)
                continue
            if n not in self.mapping:
                self.mapping[n] = len(self.mapping) + 1
            out.append(f"[{self.mapping[n]}]")
        return "".join(dict.fromkeys(out))

    def feed(self, text: str) -> str:
        """Rewrite as much of the text as is complete; hold back an unfinished '[12'."""
        buf = self._pending + text
        m = _OPEN.search(buf)
        if m and len(buf) - m.start() < 16:
            buf, self._pending = buf[: m.start()], buf[m.start():]
        else:
            self._pending = ""
        return self._clean(_MARKER.sub(self._replace, buf))

    def finish(self) -> str:
        rest, self._pending = self._pending, ""
        return self._clean(_MARKER.sub(self._replace, rest))

    @staticmethod
    def _clean(text: str) -> str:
        return re.sub(r" +([.,;:])", r"\1", re.sub(r"  +", " ", text))

    def cited(self) -> list[int]:
        """Original source numbers in their new order."""
        return sorted(self.mapping, key=self.mapping.get)


def renumber(text: str, n_sources: int) -> tuple[str, Renumberer]:
    r = Renumberer(n_sources)
    out = r.feed(text) + r.finish()
    return out.strip(), r


def has_claims(text: str) -> bool:
    """A rough test for factual content: a digit, or a sentence of five or more words."""
    return bool(re.search(r"\d", text)) or len(text.split()) >= 5
