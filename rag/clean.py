"""Pure text cleaning and metadata extraction: web-page leftovers out, content and dates kept.

Rules are line-based and conservative: a line is dropped only when it is a whole-line match for
something that is never content (an image file name, a share/review prompt, a press-contact
footer). Anything else stays, so cleaning can cost recall only on lines no one would ask about.

>>> clean_text("Nov 18, 2016\\n\\nHello there.\\n161117_art1.jpg\\nLeave a review").text
'Hello there.'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

_IMAGE_LINE = re.compile(r"^\S+\.(?:jpe?g|png|gif|webp|svg|bmp|tiff?)$", re.I)
# Linear on a line of any length: the address splits at its first "@" after the first character
# (`\S+@\S+` tried every split of a long run of "@": quadratic), and no two whitespace runs
# sit side by side where a match can fail.
_URL_OR_EMAIL_LINE = re.compile(r"^(?:E:\s*|Email:\s*)?(?:\S[^\s@]*+@\S+\.\w+|https?://\S+)$", re.I)
_BOILERPLATE_LINES = {
    "leave a review",
    "follow us on social networks",
    "news line",
    "view this article in another language",
    "share",
    "print",
    "subscribe",
    "read more",
    "related news",
    "advertisement",
}
# Section labels that news sites print above or below an article, alone on a line.
_SECTION_LABELS = {"politics", "policies", "economy", "society", "business", "world", "news", "culture"}
_FOOTER_START = re.compile(r"^(?:press\s*contact|pressekontakt|media contact|medienkontakt)\s*(?::\s*)?$", re.I)
_DATE_PREFIX = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+", re.I)
_ISO_DATE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*$")
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_MONTH_DATE = re.compile(
    rf"^\s*((?:{_MONTHS})[a-z]*\.?\s+\d{{1,2}},\s+\d{{4}})\s*$", re.I
)


@dataclass(frozen=True)
class Cleaned:
    text: str
    title: str
    date: str | None


def parse_date(text: str) -> str | None:
    """'Nov 18, 2016' or 'August 9, 2024' or '2024-10-15' → ISO date, else None."""
    text = text.strip().replace("Sept", "Sep").replace(".", "")
    for fmt in ("%Y-%m-%d", "%b %d, %Y", "%B %d, %Y"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return None


# Invisible characters that split a word for matching but not for a reader: zero-width space, word
# joiner, byte-order mark, and the soft hyphen of web text ("Zeit\u00adschrift").
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"))


def normalize(text: str) -> str:
    """NFC, unified newlines, no stray non-breaking or invisible characters. Documents and
    questions both go through it, so a question pasted with a zero-width space still matches."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\u00a0", " ").translate(_INVISIBLE)


def _is_noise(line: str) -> bool:
    low = line.strip().lower().rstrip(".:!")
    return (
        not low
        or low in _BOILERPLATE_LINES
        or bool(_IMAGE_LINE.match(line.strip()))
        or bool(_URL_OR_EMAIL_LINE.match(line.strip()))
    )


def _title_from(first_line: str, limit: int = 90) -> str:
    """A short title: the line itself when it is heading-like, else its first sentence, shortened."""
    line = first_line.strip().lstrip("#").strip()
    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
    if len(sentence) <= limit:
        return sentence.rstrip(".")
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:–- ") + "…"


_TERMINAL = re.compile(r"[.!?:;…\"”’)\]]$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•–]|\d{1,3}[.)])\s+")


def reflow(text: str, wrapped: bool = False) -> str:
    """Join lines that a layout broke, not the author: PDF and hard-wrapped text.

    A line ending in a hyphen before a lower-case word is de-hyphenated ("cross-\\ning" →
    "crossing"); a line that does not end a sentence joins the next when that one starts in lower
    case, or (with `wrapped`, for PDF text where every line is a layout line) when it is long, so
    not a heading. Blank lines, list items and short title-like lines stay as they are.

    >>> reflow("The crossing takes\\nthree hours by ferry.\\n\\nNext para-\\ngraph here.")
    'The crossing takes three hours by ferry.\\n\\nNext paragraph here.'
    """
    # The line being joined is kept as its pieces: joining by string concatenation copied the
    # whole line at every step, quadratic on a long wrapped paragraph.
    out: list[str] = []
    cur: list[str] = []  # pieces of the last output line
    size = 0  # len("".join(cur))
    item = False  # the last output line is a list item
    for line in text.split("\n"):
        stripped = line.strip()
        if cur and stripped and not _LIST_ITEM.match(stripped):
            last = cur[-1].rstrip()
            prev_len = size - (len(cur[-1]) - len(last))  # len(prev): the line so far, right-stripped
            end = _last_chars(cur, last, 2)
            if prev_len and not _TERMINAL.search(end):
                starts_lower = stripped[0].islower()
                if end.endswith("-") and prev_len > 1 and end[-2].isalpha() and starts_lower:
                    cur[-1:] = [last[:-1], stripped]
                    size = prev_len - 1 + len(stripped)
                elif starts_lower or (wrapped and prev_len >= 50 and not item and stripped[0].isalnum()):
                    cur[-1:] = [last, " " + stripped]
                    size = prev_len + 1 + len(stripped)
                else:
                    stripped = ""  # not joined
                if stripped:
                    if size < 256:  # a list marker and its space lie within the first characters
                        item = bool(_LIST_ITEM.match("".join(cur).strip()))
                    continue
        if cur:
            out.append("".join(cur))
        cur, size, item = [line], len(line), bool(_LIST_ITEM.match(line.strip()))
    if cur:
        out.append("".join(cur))
    return "\n".join(out)


def _last_chars(pieces: list[str], last: str, k: int) -> str:
    """The last `k` characters of "".join(pieces).rstrip(), where `last` is pieces[-1].rstrip()."""
    tail = last[-k:]
    i = len(pieces) - 2
    while len(tail) < k and i >= 0:
        tail = pieces[i][-(k - len(tail)):] + tail
        i -= 1
    return tail


def clean_text(raw: str, title_hint: str | None = None) -> Cleaned:
    """Clean one document's text and pull out its title and date (pure; no I/O)."""
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in normalize(raw).split("\n")]
    date: str | None = None
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _FOOTER_START.match(line):
            break  # a press-contact footer runs to the end of the document
        if date is None and i < 8 and all(k.lower() in _SECTION_LABELS for k in kept):
            m = _DATE_PREFIX.match(line)
            if m:
                date = m.group(1)
                line = line[m.end():]
            else:
                m = _ISO_DATE.match(line) or _MONTH_DATE.match(line)
                if m and parse_date(m.group(1)):
                    date = parse_date(m.group(1))
                    continue
        if _is_noise(line):
            continue
        kept.append(line)
    # Section labels only at the edges: a lone "Politics" inside an article could be content.
    while kept and kept[0].lower() in _SECTION_LABELS:
        kept.pop(0)
    while kept and kept[-1].lower() in _SECTION_LABELS:
        kept.pop()
    deduped: list[str] = []
    for line in kept:
        if not deduped or line != deduped[-1]:
            deduped.append(line)
    text = "\n\n".join(deduped)
    title = (title_hint or "").strip() or (_title_from(deduped[0]) if deduped else "")
    return Cleaned(text=text, title=title, date=date)
