"""Make untrusted text safe to print: no terminal escapes, no control characters, no secrets.

Model output and document text reach terminals and Discord. An ESC sequence can recolour or
rewrite the terminal (or hide text), a carriage return can overwrite the line before it, and
bidirectional overrides can make text read differently from what it is ("Trojan Source"). All of
these are removed; newlines and tabs stay. Secrets (the LLM API key) are replaced by "***".

`StreamCleaner` does the same for text that arrives in pieces: it holds back an unfinished escape
sequence and any tail that could be the start of a secret, so the concatenated output equals
`clean(whole text)`.

>>> clean("ok\\x1b[31m red\\x1b[0m\\r\\x07!")
'ok red!'
>>> redact("key=sk-123", ["sk-123"])
'key=***'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), other two-character escapes, and their
# 8-bit C1 forms (CSI = U+009B, OSC = U+009D).
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
)
# The start of an escape that the next piece of a stream may complete (held back, at most 256 chars).
_OPEN_ESCAPE = re.compile(
    r"(?:(?:\x1b\[|\x9b)[0-?]*[ -/]*|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*\x1b?|\x1b[ -/]*)$"
)
# C0 controls except \t and \n, DEL, C1 controls, bidi embeddings/overrides/isolates, and the
# zero-width no-break "BOM" in the middle of text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
MASK = "***"


def strip_controls(text: str) -> str:
    """Remove escape sequences and control characters; keep newlines and tabs (\\r\\n becomes \\n)."""
    text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def clean(text: str, secrets: Iterable[str] = ()) -> str:
    """`strip_controls` then `redact`: what every string from a model or a document goes through."""
    return redact(strip_controls(text), secrets)


class StreamCleaner:
    """`clean` for text arriving in pieces: `feed` returns what is safe to show now, `finish` the rest.

    Two stages, as in `clean`: strip (holding back an unfinished escape or a lone \\r), then
    redact the stripped text (holding back a tail that could begin a secret).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = [s for s in secrets if s]
        self._raw = ""  # not yet stripped
        self._stripped = ""  # stripped, not yet redacted

    def feed(self, piece: str) -> str:
        buf = self._raw + piece
        keep = len(buf)
        m = _OPEN_ESCAPE.search(buf, max(0, len(buf) - 256))
        if m:
            keep = m.start()
        elif buf.endswith("\r"):
            keep -= 1  # may be the first half of \r\n
        self._raw = buf[keep:]
        return self._redact(strip_controls(buf[:keep]), final=False)

    def finish(self) -> str:
        rest, self._raw = self._raw, ""
        return self._redact(strip_controls(rest), final=True)

    def _redact(self, text: str, final: bool) -> str:
        buf = self._stripped + text
        keep = len(buf) if final else len(buf) - self._secret_prefix(buf)
        self._stripped = buf[keep:]
        # A secret that straddles the cut starts inside the held tail, so redacting the head is exact.
        return redact(buf[:keep], self.secrets)

    def _secret_prefix(self, buf: str) -> int:
        """Length of the longest tail of `buf` that is a proper prefix of a secret."""
        best = 0
        for s in self.secrets:
            for n in range(min(len(s) - 1, len(buf)), best, -1):
                if buf.endswith(s[:n]):
                    best = n
                    break
        return best
