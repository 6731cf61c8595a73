"""Make untrusted text safe to show on a terminal or in a chat: pure string functions, no I/O.

Documents, questions and LLM replies are untrusted. Printed raw, an escape sequence in any of
them can clear the screen, retitle the window or hide text, and a lone surrogate (how Python
carries undecodable bytes from argv or file names) makes `print` raise. Tabs and newlines stay.

>>> strip_controls("ok\\x1b[2J\\x1b]0;pwned\\x07 done\\r\\n")
'ok done\\n'
>>> replace_surrogates("caf\\udce9")
'caf\\ufffd'
"""

from __future__ import annotations

import re

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte escapes, and C1 CSI/OSC.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07]*\x07?"
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
