"""Typed records passed between pipeline stages (documents → chunks → hits → answer)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# What every answerer says when the documents do not hold the answer (the LLM is told to say it
# word for word, so an abstention reads the same whichever backend answered).
NOT_FOUND = "I couldn't find this in the documents."


@dataclass(frozen=True)
class SourceDoc:
    """A cleaned document, ready to split. `source` is the path relative to the seeds folder."""

    source: str
    text: str
    title: str
    date: str | None
    language: str
    sha256: str


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    n: int
    text: str
    title: str
    date: str | None
    language: str
    # Sentences of this chunk as (start, end) character offsets into `text`.
    sentences: tuple[tuple[int, int], ...] = ()

    def sentence_texts(self) -> list[str]:
        return [self.text[a:b] for a, b in self.sentences]

    def to_json(self) -> dict:
        d = asdict(self)
        d["sentences"] = [list(s) for s in self.sentences]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Chunk:
        return cls(**{**d, "sentences": tuple(tuple(s) for s in d.get("sentences", ()))})


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and per-channel ranks (1-based, None if absent)."""

    chunk_index: int  # the chunk's id in its store (a row of the snapshot, or chunks.id in PostgreSQL)
    chunk: Chunk
    score: float
    dense: float = 0.0
    ranks: dict[str, int | None] = field(default_factory=dict)
    # The chunk's sentence vectors (rows in `chunk.sentences` order), read with the hit so the
    # answerer needs no second trip to the store.
    sentence_vectors: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    title: str
    date: str | None
    snippet: str
    score: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AnswerRequest:
    """What the engine hands an answerer: the question, what retrieval found, and a time limit."""

    question: str  # the question to answer (a follow-up already made standalone)
    query: str  # the text retrieval used
    hits: tuple[Hit, ...]
    qvec: Any  # the query vector (numpy), for sentence scores
    deadline: float | None = None  # time.monotonic() by which an LLM reply must be complete
    limit_s: float = 0.0  # the limit that deadline stands for, to quote in messages


@dataclass(frozen=True)
class Draft:
    """An answerer's reply before the engine checks it and turns it into an Answer.

    `grounded` drafts are built from the sources and carry their final citations (extractive);
    the others carry markers `[n]` that number `hits` and must be verified (LLM).
    """

    text: str
    grounded: bool
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    confidence: float = 0.0
    cut_short: str | None = None  # why the text may be incomplete


@dataclass(frozen=True)
class Note:
    """Something to know about an answer. `text` is safe to show anyone; `detail` is the same note
    with an error's own words (server paths, process ids, the LLM's URL), for the CLI and the log
    only. `str(note)` is the detail when there is one: what an operator reads."""

    text: str
    detail: str = ""

    def __str__(self) -> str:
        return self.detail or self.text


@dataclass
class Answer:
    question: str
    text: str
    abstained: bool
    citations: list[Citation]
    backend: str = "extractive"
    notes: list[Note] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    retrieved: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "backend": self.backend,
            "notes": [str(n) for n in self.notes],
            "citations": [c.to_json() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "confidence": round(self.confidence, 4),
            "retrieved": list(self.retrieved),
        }
