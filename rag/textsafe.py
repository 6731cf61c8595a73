"""Make untrusted text safe to show on a terminal or in a chat: pure string functions, no I/O.

Documents, questions and LLM replies are untrusted. Printed raw, an escape sequence in any of
them can clear the screen, retitle the window or hide text, and a lone surrogate (how Python
carries undecodable bytes from argv or file names) makes `print` raise. Tabs and newlines stay.

>>> strip_controls("ok\\x1b[2J\\x1b]0;pwned\\x07 done\\r\\n")
'ok done\\n'
>>> replace_surrogates("caf\\udce9")
'caf\\ufffd'

Secrets (the LLM API key) are replaced by "***" (`redact`, `clean`). `StreamCleaner` does the
same for text that arrives in pieces: it holds back an unfinished escape sequence and any tail
that could begin a secret, so the concatenated output equals `clean(whole text)`.

>>> redact("key=sk-123", ["sk-123"])
'key=***'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes, and C1 CSI/OSC.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -/]*[0-~]"
)
# The start of an escape that the next piece of a stream may complete (held back, at most 256 chars).
_OPEN_ESCAPE = re.compile(
    r"(?:(?:\x1b\[|\x9b)[0-?]*[ -/]*|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*\x1b?|\x1b[ -/]*)$"
)
# C0 controls except tab and newline, DEL, C1 controls, and bidi overrides that reorder what is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def replace_surrogates(text: str) -> str:
    """Lone surrogates (undecodable bytes smuggled in by surrogateescape) become U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def strip_controls(text: str) -> str:
    """Drop terminal escape sequences and control characters; keep tabs and newlines."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))


def safe_text(text: str) -> str:
    """Both of the above: what every front end should do before printing untrusted text."""
    return strip_controls(replace_surrogates(text))


def escape_name(name: str) -> str:
    r"""A file name on one readable line: undecodable bytes and control characters as \xNN.

    >>> escape_name("caf\udce9\n.txt")
    'caf\\xe9\\x0a.txt'
    """
    try:
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte produces
        name = replace_surrogates(name)
    return _NAME_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", name)


def has_undecodable(name: str) -> bool:
    """True when a name decoded by the OS layer carries bytes that are not valid UTF-8."""
    return bool(_SURROGATE.search(name))


MASK = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def clean(text: str, secrets: Iterable[str] = ()) -> str:
    """`safe_text` then `redact`: what every string from a model or a document goes through."""
    return redact(safe_text(text), secrets)


class StreamCleaner:
    """`clean` for text arriving in pieces: `feed` returns what is safe to show now, `finish` the rest.

    Two stages, as in `clean`: strip (holding back an unfinished escape sequence or a lone \\r),
    then redact the stripped text (holding back a tail that could begin a secret).
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
        self._raw = buf[keep:]
        return self._redact(safe_text(buf[:keep]), final=False)

    def finish(self) -> str:
        rest, self._raw = self._raw, ""
        return self._redact(safe_text(rest), final=True)

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
