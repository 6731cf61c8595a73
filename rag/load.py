"""Read documents from the seeds folder: the only module of the pipeline that touches source files.

Unreadable inputs (empty, binary, undecodable, broken PDF) are skipped with a warning naming the
file, so one bad file never stops the rest of the folder from being indexed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from rag.clean import clean_text
from rag.errors import SeedsMissing
from rag.records import SourceDoc

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


def list_sources(seeds_dir: Path) -> list[Path]:
    if not seeds_dir.is_dir():
        raise SeedsMissing(
            f"documents folder {str(seeds_dir)!r} does not exist; create it, "
            "or set RAG_SEEDS_DIR in the environment or in a .env file in the working directory"
        )
    return sorted(
        p for p in seeds_dir.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ValueError("binary content (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None


def _html_to_text(html: str) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "aside", "form", "noscript"]):
        tag.decompose()
    heading = soup.find("h1")
    title = (heading or soup.title).get_text(" ", strip=True) if (heading or soup.title) else None
    return soup.get_text("\n", strip=True), title


def _pdf_to_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n\n".join((page.extract_text() or "") for page in PdfReader(str(path)).pages)


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language, 'und' when it cannot be told."""
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect is random without a seed
    try:
        return detect(text[:3000])
    except LangDetectException:
        return "und"


def read_document(path: Path, seeds_dir: Path) -> SourceDoc:
    """Read and clean one file; raise ValueError with a reason when it cannot be used."""
    data = path.read_bytes()
    if not data.strip():
        raise ValueError("empty file")
    suffix = path.suffix.lower()
    title_hint = None
    if suffix in PDF_SUFFIXES:
        try:
            raw = _pdf_to_text(path)
        except Exception as err:  # pypdf raises many types on broken files
            raise ValueError(f"unreadable PDF ({type(err).__name__})") from None
    else:
        raw = _decode(data)
        if suffix in HTML_SUFFIXES:
            raw, title_hint = _html_to_text(raw)
        elif suffix in (".md", ".markdown"):
            m = re.search(r"^#\s+(.+)$", raw, re.M)
            title_hint = m.group(1).strip() if m else None
    cleaned = clean_text(raw, title_hint=title_hint)
    if len(cleaned.text.strip()) < 2:
        raise ValueError("no text left after cleaning")
    return SourceDoc(
        source=path.relative_to(seeds_dir).as_posix(),
        text=cleaned.text,
        title=cleaned.title or path.stem,
        date=cleaned.date,
        language=detect_language(cleaned.text),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def load_documents(seeds_dir: Path) -> tuple[list[SourceDoc], list[Skipped]]:
    docs: list[SourceDoc] = []
    skipped: list[Skipped] = []
    for path in list_sources(seeds_dir):
        rel = path.relative_to(seeds_dir).as_posix()
        try:
            docs.append(read_document(path, seeds_dir))
        except (ValueError, OSError) as err:
            log.warning("skipping %s: %s", rel, err)
            skipped.append(Skipped(rel, str(err)))
    return docs, skipped
