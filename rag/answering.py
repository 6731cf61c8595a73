"""The one small interface every answerer implements, and the extractive answerer behind it.

An answerer gets an `AnswerRequest` (question, hits, query vector, deadline) and returns a
`Draft`, whole (`answer`) or as text pieces followed by the Draft (`stream`). It never calls the
engine: the engine prepares, retrieves, calls an answerer, verifies and falls back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from rag.records import AnswerRequest, Draft


class Answerer(Protocol):
    backend: str  # "extractive" or "llm", shown with every answer

    def answer(self, request: AnswerRequest) -> Draft: ...

    def stream(self, request: AnswerRequest) -> Iterator[str | Draft]: ...


class Extractive:
    """Sentences of the retrieved chunks, cited (rag.answer.ExtractiveAnswerer); never fails."""

    backend = "extractive"

    def __init__(self, answerer) -> None:
        self.answerer = answerer  # rag.answer.ExtractiveAnswerer over the same snapshot as the hits

    def answer(self, request: AnswerRequest, memo=None) -> Draft:
        """`memo`: the question's memo from `memo()`, already filled by `rerank` (optional)."""
        r = self.answerer.answer(request.query, request.qvec, list(request.hits), memo)
        return Draft(r.text, grounded=True, citations=tuple(r.citations), abstained=r.abstained,
                     confidence=r.confidence)

    def stream(self, request: AnswerRequest) -> Iterator[str | Draft]:
        draft = self.answer(request)
        yield draft.text
        yield draft

    def memo(self, query: str):
        """A per-question memo (rag.answer.QuestionMemo) for `rerank` and then `answer`: each
        sentence is read once per question, and nothing is kept after it."""
        return self.answerer.memo(query)

    def chunks_holding(self, words: list[str]) -> list[tuple[int, str]]:
        """How many chunks hold each word in some inflection, and the stem they hold
        (rag.answer.ExtractiveAnswerer.chunks_holding)."""
        return self.answerer.chunks_holding(words)

    def rerank(self, query: str, qvec, hits: list, memo=None) -> list:
        """The hits ordered by the evidence of their best sentence (rag.answer.ExtractiveAnswerer.rerank)."""
        return self.answerer.rerank(query, qvec, hits, memo)

    def evidence(self, request: AnswerRequest, hits, memo=None) -> float:
        """How well `hits` answer the question, on the extractive answerer's confidence scale."""
        return self.answerer.answer(request.query, request.qvec, list(hits), memo).confidence if hits else 0.0
