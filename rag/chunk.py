"""Sentence-aware chunking with llama-index's SentenceSplitter, sized in the embedding model's tokens.

Chunk size counts the embedding model's own word pieces, so no chunk is silently truncated by the
model's 256-token window. Ids are deterministic (source, position, content hash): re-ingesting an
unchanged file yields the same ids, which is what makes incremental ingest possible.

A long document is handed to the splitter one section at a time (cut at paragraph, line,
sentence or word boundaries): SentenceSplitter tokenizes its whole input before splitting it,
which on a multi-megabyte text costs gigabytes and, on lines with nothing to split at, minutes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator

from rag.records import Chunk, SourceDoc
from rag.sentences import split_keep_whitespace, split_sentences


def chunk_id(source: str, n: int, text: str) -> str:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    return f"{source}#{n}:{digest}"


def make_splitter(chunk_size: int, chunk_overlap: int, token_ids: Callable[[str], list]):
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        tokenizer=token_ids,
        paragraph_separator="\n\n",
        chunking_tokenizer_fn=split_keep_whitespace,
        include_metadata=False,
        include_prev_next_rel=False,
    )


SECTION_CHARS = 20_000
_CUTS = (re.compile(r"\n\s*\n\s*"), re.compile(r"\n\s*"), re.compile(r"[.!?…][\"”’')\]]*\s+"), re.compile(r"\s+"))


def sections(text: str, max_chars: int = SECTION_CHARS, hard_chars: int = 200) -> Iterator[str]:
    """Consecutive pieces of `text` (they join back to it), each at most `max_chars` long.

    Each cut falls after the last paragraph break in the second half of the window, else the
    last line break, sentence end or space; a run with no space at all is cut every
    `hard_chars` characters (a word piece covers at least one character, so such a piece fits a
    chunk of `hard_chars` tokens without the splitter falling back to one call per character).

    >>> [len(s) for s in sections("a" * 450, max_chars=300, hard_chars=200)]
    [200, 250]
    """
    start, n = 0, len(text)
    while n - start > max_chars:
        end = start + max_chars
        cut = None
        for pattern in _CUTS:
            last = None
            for last in pattern.finditer(text, start + max_chars // 2, end):
                pass
            if last is not None:
                cut = last.end()
                break
        if cut is None:
            space = _CUTS[-1].search(text, start, end)
            cut = space.start() if space and space.start() > start else start + min(hard_chars, max_chars)
        yield text[start:cut]
        start = cut
    if start < n:
        yield text[start:]


def chunk_document(doc: SourceDoc, splitter, max_section_chars: int = SECTION_CHARS) -> list[Chunk]:
    texts = (t for part in sections(doc.text, max_section_chars, splitter.chunk_size)
             for t in splitter.split_text(part))
    chunks = []
    for n, text in enumerate(t for t in texts if t.strip()):
        chunks.append(
            Chunk(
                id=chunk_id(doc.source, n, text),
                source=doc.source,
                n=n,
                text=text,
                title=doc.title,
                date=doc.date,
                language=doc.language,
                sentences=tuple(split_sentences(text)),
            )
        )
    return chunks
