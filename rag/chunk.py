"""Sentence-aware chunking with llama-index's SentenceSplitter, sized in the embedding model's tokens.

Chunk size counts the embedding model's own word pieces, so no chunk is silently truncated by the
model's 256-token window. Ids are deterministic (source, position, content hash): re-ingesting an
unchanged file yields the same ids, which is what makes incremental ingest possible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

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


def chunk_document(doc: SourceDoc, splitter) -> list[Chunk]:
    chunks = []
    for n, text in enumerate(t for t in splitter.split_text(doc.text) if t.strip()):
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
