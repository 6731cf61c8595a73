"""Read documents from the seeds folder: the only module of the pipeline that touches source files.

Reading assumes the folder is not to be trusted. Each problem skips one file with a warning that
names it, and the rest of the folder is indexed:
- unreadable content: empty, binary, not UTF-8, a broken PDF, nothing left after cleaning;
- files over the size limit (`RAG_MAX_FILE_MB`), so one huge file cannot exhaust memory;
- symbolic links (to files or folders) that resolve outside the folder, unless
  `RAG_ALLOW_OUTSIDE_LINKS` allows them, so a link to /etc/passwd is never indexed and quoted;
  links inside the folder are followed, folder loops are not;
- names that are not valid UTF-8 (shown escaped, e.g. caf\\xe9.txt), FIFOs, sockets and devices;
- files that vanish before or while being read.
Each file is opened once, hashed from the bytes actually read, and its size and mtime are taken
before reading and checked again after it. A file that changed meanwhile is re-read; what gets
recorded is the version read, so the next ingest picks up later changes (see `Reader.stats`).

Hidden files and folders (names starting with ".") are ignored.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.clean import clean_text, reflow
from rag.errors import SeedsMissing
from rag.records import SourceDoc
from rag.textsafe import escape_name, has_undecodable, safe_text

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_READ_BLOCK = 1 << 20
_READ_ATTEMPTS = 3


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class SeedFile:
    """A candidate document found by `scan`: where to open it and what it looked like then."""

    path: Path
    source: str  # path relative to the seeds folder, '/'-separated: the document's name
    size: int
    mtime_ns: int
    via_link: bool = False  # reached through a symbolic link (so it may not be opened O_NOFOLLOW)


@dataclass(frozen=True)
class Scan:
    files: tuple[SeedFile, ...]
    skipped: tuple[Skipped, ...]

    def signature(self) -> dict[str, list[int]]:
        """Size and mtime of every candidate file: cheap change detection for `ask`."""
        return {f.source: [f.size, f.mtime_ns] for f in self.files}


def _missing(seeds_dir: Path, what: str) -> SeedsMissing:
    return SeedsMissing(
        f"documents folder {str(seeds_dir)!r} {what}; create it, "
        "or set RAG_SEEDS_DIR in the environment or in a .env file in the working directory"
    )


def scan(seeds_dir: Path, allow_outside_links: bool = False) -> Scan:
    """Every file that could be a document, in a stable order, and what was passed over (with why).

    Symbolic links are followed when they resolve inside the folder to something that would not
    be indexed anyway (a hidden folder, another suffix): a link to an indexed file or folder would
    only index it twice. Links that leave the folder are skipped unless `allow_outside_links`.
    Each real folder is walked at most once, so link loops and link mazes end.
    """
    try:
        root = Path(os.path.realpath(seeds_dir, strict=True))
    except OSError:
        raise _missing(seeds_dir, "does not exist") from None
    if not root.is_dir():
        raise _missing(seeds_dir, "is not a folder")
    files: list[SeedFile] = []
    skipped: list[Skipped] = []
    walked = {str(root)}
    # (folder path, its name relative to the seeds folder, reached through a link), depth first, sorted
    stack: list[tuple[str, str, bool]] = [(str(seeds_dir), "", False)]

    def skip(rel: str, reason: str) -> None:  # logged by the Reader: a staleness check stays quiet
        skipped.append(Skipped(escape_name(rel), reason))

    while stack:
        folder, rel, under_link = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            skip(rel or ".", f"folder cannot be read ({err.strerror or err})")
            continue
        subfolders = []
        for e in entries:
            if e.name.startswith("."):
                continue
            name = f"{rel}/{e.name}" if rel else e.name
            try:
                is_dir, is_link = e.is_dir(), e.is_symlink()
            except OSError:
                is_dir = is_link = False
            if not is_dir and os.path.splitext(e.name)[1].lower() not in SUFFIXES:
                continue
            if has_undecodable(e.name):
                skip(name, "its name is not valid UTF-8; rename it")
                continue
            real = os.path.realpath(e.path) if (is_link or is_dir) else None
            if is_link:
                if not os.path.exists(real):
                    skip(name, "broken symbolic link")
                    continue
                inside = _inside(real, root)
                if inside and _indexed_anyway(real, root, is_dir):
                    continue  # the target is indexed under its own name
                if not inside and not allow_outside_links:
                    skip(name, "symbolic link to a place outside the documents folder "
                               "(set RAG_ALLOW_OUTSIDE_LINKS=true to follow such links)")
                    continue
            if is_dir:
                if real in walked:
                    skip(name, "symbolic link to a folder already indexed (a loop, or a second link)")
                else:
                    walked.add(real)
                    subfolders.append((e.path, name, under_link or is_link))
                continue
            try:
                st = e.stat()
            except OSError as err:
                skip(name, f"cannot be read ({err.strerror or err})")
                continue
            if not stat.S_ISREG(st.st_mode):
                skip(name, "not a regular file")
                continue
            files.append(SeedFile(Path(e.path), name, st.st_size, st.st_mtime_ns, under_link or is_link))
        stack.extend(reversed(subfolders))  # an explicit stack: a deep tree cannot exhaust recursion
    files.sort(key=lambda f: f.source)
    return Scan(tuple(files), tuple(skipped))


def _inside(path: str, root: Path) -> bool:
    return Path(path) == root or Path(path).is_relative_to(root)


def _indexed_anyway(real: str, root: Path, is_dir: bool) -> bool:
    """Would the walk reach `real` (inside root) under its own name: no hidden part, a known suffix?"""
    parts = Path(real).relative_to(root).parts
    if not parts or any(p.startswith(".") for p in parts):
        return False
    return is_dir or os.path.splitext(parts[-1])[1].lower() in SUFFIXES


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ValueError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None


_HTML_BLOCKS = ["p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "dt", "dd", "blockquote", "pre",
                "figcaption", "caption", "div", "section", "article", "main", "table", "tr", "ul", "ol", "title"]


def _html_to_text(html: str) -> tuple[str, str | None]:
    """Block elements become paragraphs; inline ones (<b>, <a>, <span>) stay inside their sentence."""
    from bs4 import BeautifulSoup

    # html.parser searches to the end of the text for the closer of every unclosed "<?", "<!--",
    # "<![CDATA[" or "<a b" (quadratic: 50 KB of "<a b" took 10 s); a comment at the end that holds
    # every closer ends each search there. Alone, it is a comment, so not text.
    soup = BeautifulSoup(html + "<!--]]>-->", "html.parser")
    end_comment_kept = _ends_with_end_comment(soup)
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript", "head"]):
        tag.decompose()
    heading = soup.find("h1")
    title = heading.get_text(" ", strip=True) if heading else None
    text = _block_text(soup).rstrip()
    if text.endswith("-->") and not end_comment_kept:  # an unclosed tag swallowed the comment's start
        text = text[:-3]
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    paragraphs = (" ".join(part.split()) for part in re.split(r"\n\s*\n", text))
    return "\n".join(p for p in paragraphs if p), title


def _ends_with_end_comment(soup) -> bool:
    from bs4 import Comment

    node = soup
    while getattr(node, "contents", None):
        node = node.contents[-1]
    return isinstance(node, Comment) and str(node) == "]]>"


def _block_text(soup) -> str:
    """The page's text (as `get_text("")`) with a blank line around each block element and a line
    break for each <br>, in one walk: inserting the breaks into the tree walked a subtree per
    element, quadratic on a page of unclosed <p>s (which the parser nests)."""
    from bs4 import CData, NavigableString, Tag

    blocks = set(_HTML_BLOCKS)
    out: list[str] = []
    stack: list = [soup]
    while stack:
        node = stack.pop()
        if isinstance(node, Tag):
            if node.name == "br":
                out.append("\n")
            elif node.name in blocks:
                out.append("\n\n")
                stack.append(_BLOCK_END)
                stack.extend(reversed(node.contents))
            else:
                stack.extend(reversed(node.contents))
        elif node is _BLOCK_END:
            out.append("\n\n")
        elif type(node) in (NavigableString, CData):  # not comments, doctypes, <template> strings
            out.append(node)
    return "".join(out)


_BLOCK_END = object()


def _pdf_to_text(data: bytes) -> str:
    """Page texts with the layout's line wraps and hyphenation joined back (rag.clean.reflow)."""
    from pypdf import PdfReader

    return "\n\n".join(reflow(page.extract_text() or "", wrapped=True) for page in PdfReader(io.BytesIO(data)).pages)


# Markdown patterns run on single lines of any length, so each one is linear: no scan may cross
# the mark that would start another match (a lazy `.*?` between marks made a 120 KB line of
# "*a " take 100 s). A link's target may hold one level of parentheses (wiki URLs).
_MD_HEADING = re.compile(r"\s{0,3}#{1,6}\s+")
_MD_LINK = re.compile(r"!?\[([^\[\]]*+)\]\((?:[^()]++|\([^()]*+\))*+\)")
_MD_EMPHASIS = re.compile(
    r"\*\*(?=[^\s*])((?:[^*]|\*(?!\*))*?[^\s*])\*\*"  # **strong**, which may hold *emphasis*
    r"|__(?=[^\s_])((?:[^_]|_(?!_))*?[^\s_])__"
    r"|\*([^\s*](?:[^*]*?[^\s*])?)\*"
    r"|`([^`]+)`"
)


def _md_heading(line: str) -> str:
    """'## Title ##' → 'Title' and a paragraph break (a closing run of '#' needs a space before it)."""
    m = _MD_HEADING.match(line)
    if not m:
        return line
    body = line[m.end():].rstrip()
    unclosed = body.rstrip("#")
    if not unclosed or unclosed[-1].isspace():
        body = unclosed.rstrip()
    return body + "\n"


_MD_FENCE = re.compile(r"^ {0,3}(?:```|~~~)")
_MD_BLOCK_START = re.compile(r"^ {0,3}(?:[-*+]\s|\d{1,9}[.)]\s|>|\||<)|^(?: {4}|\t)")  # item, quote, table, HTML, code
_MD_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*)$")


def _markdown_to_text(md: str) -> str:
    """Headings lose their '#' (they stay lines of their own, so never part of a sentence), the
    lines of a paragraph or list item are joined as a Markdown renderer joins them (a line break
    inside a paragraph is a space, whatever case the next line starts with), links keep their
    text, emphasis marks go. Code blocks, tables and quotes keep their lines."""
    blocks: list[list[str]] = []  # each block becomes one output line
    joinable = False  # the last block is a paragraph or list item that a plain line continues
    fenced = False
    for raw in md.split("\n"):
        if _MD_FENCE.match(raw):
            fenced = not fenced
            blocks.append([raw])
            joinable = False
            continue
        if fenced:
            blocks.append([raw])
            continue
        if not raw.strip():
            blocks.append([""])
            joinable = False
            continue
        if _MD_RULE.match(raw):
            if raw.strip()[0] in "=-" and joinable and blocks:  # setext underline: the block was a heading
                blocks[-1] = ["".join(blocks[-1]), "\n"]
            joinable = False
            continue
        heading = _md_heading(raw)
        line = _MD_EMPHASIS.sub(lambda m: m.group(m.lastindex), _MD_LINK.sub(r"\1", heading))
        if heading != raw:
            blocks.append([line])
            joinable = False
        elif joinable and not _MD_BLOCK_START.match(raw):
            blocks[-1].append(" " + line.strip().rstrip("\\"))
            joinable = not raw.endswith(("  ", "\\"))  # a hard line break ends the joining
        else:
            blocks.append([line.rstrip().rstrip("\\")])
            joinable = (not raw.lstrip().startswith(("|", "<", ">")) and not raw.startswith(("    ", "\t"))
                        and not raw.endswith(("  ", "\\")))
    return reflow("\n".join("".join(b) for b in blocks))


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, 'und' when it cannot be told."""
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect is random without a seed
    try:
        return detect(text[:3000])
    except LangDetectException:
        return "und"


_LINE_BREAKS = str.maketrans({"\r": "\n", "\v": "\n", "\f": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"})


def _plain(text: str) -> str:
    """Text without terminal escapes, control characters or lone surrogates; line breaks kept as \\n.

    What a document says is quoted back to terminals, chats and LLM prompts, so an escape
    sequence hidden in it (clear screen, set window title) is dropped here, once, at reading.
    """
    return safe_text(text.replace("\r\n", "\n").translate(_LINE_BREAKS))


def parse_document(source: str, data: bytes, title_fallback: str | None = None) -> SourceDoc:
    """Bytes of one file → a cleaned document (pure); ValueError with a reason when unusable."""
    if not data.strip():
        raise ValueError("empty file")
    suffix = os.path.splitext(source)[1].lower()
    title_hint = None
    if suffix in PDF_SUFFIXES:
        try:
            raw = _pdf_to_text(data)
        except Exception as err:  # pypdf raises many types on broken files
            raise ValueError(f"unreadable PDF ({type(err).__name__})") from None
    else:
        raw = _decode(data)
        if suffix in HTML_SUFFIXES:
            try:
                raw, title_hint = _html_to_text(raw)
            except Exception as err:  # bs4 rejects some broken markup ("<![ x") with its own error
                raise ValueError(f"unreadable HTML ({type(err).__name__})") from None
        elif suffix in (".md", ".markdown"):
            m = re.search(r"^#\s+(.+)$", raw, re.M)
            title_hint = m.group(1).strip().rstrip("#").strip() if m else None
            raw = _markdown_to_text(raw)
        else:
            raw = reflow(raw)
    cleaned = clean_text(_plain(raw), title_hint=title_hint and _plain(title_hint))
    if len(cleaned.text.strip()) < 2:
        raise ValueError("no text left after cleaning")
    return SourceDoc(
        source=source,
        text=cleaned.text,
        title=cleaned.title or title_fallback or os.path.splitext(os.path.basename(source))[0],
        date=cleaned.date,
        language=detect_language(cleaned.text),
        sha256=hashlib.sha256(data).hexdigest(),
    )


class FileVanished(Exception):
    """The file was deleted or renamed away while it was being read."""


def read_bytes(f: SeedFile, max_bytes: int) -> tuple[bytes, os.stat_result, bool]:
    """The file's bytes, its stat from just before reading, and whether it changed meanwhile.

    Raises OSError (FileNotFoundError if it is gone), FileVanished, or ValueError with a reason.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block us
    if not f.via_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)  # a file swapped for a link is not followed
    fd = os.open(f.path, flags)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise ValueError("not a regular file")
        if before.st_size > max_bytes:
            raise ValueError(_too_large(before.st_size, max_bytes))
        parts, total = [], 0
        while block := os.read(fd, _READ_BLOCK):
            total += len(block)
            if total > max_bytes:
                raise ValueError(_too_large(total, max_bytes))
            parts.append(block)
    finally:
        os.close(fd)
    try:
        after = os.stat(f.path)
    except FileNotFoundError:
        raise FileVanished("vanished while being read") from None
    same = (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    return b"".join(parts), before, not (same and total == before.st_size)


def _too_large(size: int, max_bytes: int) -> str:
    return (f"{size / 2**20:.1f} MB is over the {max_bytes / 2**20:g} MB limit "
            "(raise RAG_MAX_FILE_MB to index it)")


class Reader:
    """Reads the documents of one scan, one at a time, so only one file's text is in memory.

    After iterating, `stats` holds the size and mtime of what was actually read (or looked at
    and skipped): stored in the index, it makes the next `ask` re-ingest a file that changed
    after or while it was read. Files that vanished are left out, so nothing claims them.
    """

    def __init__(self, found: Scan, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.scan = found
        self.max_bytes = max_bytes
        self.skipped: list[Skipped] = list(found.skipped)
        self.stats: dict[str, list[int]] = {}

    def _skip(self, source: str, reason: str) -> None:
        log.warning("skipping %s: %s", source, reason)
        self.skipped.append(Skipped(source, reason))

    def documents(self) -> Iterator[SourceDoc]:
        for s in self.scan.skipped:
            log.warning("skipping %s: %s", s.source, s.reason)
        for f in self.scan.files:
            doc = self._read(f)
            if doc is not None:
                yield doc

    def _read(self, f: SeedFile) -> SourceDoc | None:
        if f.size > self.max_bytes:  # known from the scan: not even opened
            self.stats[f.source] = [f.size, f.mtime_ns]
            self._skip(f.source, _too_large(f.size, self.max_bytes))
            return None
        for attempt in range(_READ_ATTEMPTS):
            try:
                data, st, changed = read_bytes(f, self.max_bytes)
            except FileNotFoundError:
                self._skip(f.source, "vanished before it could be read")
                return None
            except FileVanished as err:
                self._skip(f.source, str(err))
                return None
            except (ValueError, OSError) as err:
                reason = str(err) if isinstance(err, ValueError) else f"cannot be read ({err.strerror or err})"
                self.stats[f.source] = [f.size, f.mtime_ns]
                self._skip(f.source, reason)
                return None
            if not changed:
                break
        else:
            # Still being written: index the last version read. Its recorded stat is older than the
            # file's, so the next ingest (or question) reads the file again.
            log.warning("%s kept changing while being read; indexed the version read, "
                        "the next ingest reads it again", f.source)
        self.stats[f.source] = [st.st_size, st.st_mtime_ns]
        try:
            return parse_document(f.source, data)
        except ValueError as err:
            self._skip(f.source, str(err))
            return None


def load_documents(
    seeds_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES, allow_outside_links: bool = False
) -> tuple[list[SourceDoc], list[Skipped]]:
    """All readable documents of the folder, and what was skipped (for tests and small folders)."""
    reader = Reader(scan(seeds_dir, allow_outside_links), max_bytes)
    docs = list(reader.documents())
    return docs, reader.skipped
