"""The one facade every front end calls: `Engine.ask(question, history) -> Answer`.

The engine owns the lazily loaded state (snapshot, query embedder, retriever, answerer) and
swaps it as a unit after a re-index, so questions in flight finish on the old index. Nothing
loads at import or construction time; the first `ask` (or `warm_up`) pays for it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rag.config import Settings
from rag.errors import BadQuestion, IndexIncompatible, IndexMissing, SeedsMissing
from rag.records import Answer

log = logging.getLogger(__name__)


@dataclass
class _State:
    snapshot: object
    retriever: object
    extractive: object


class Engine:
    def __init__(self, settings: Settings, auto_ingest: bool = True, llm=None) -> None:
        self.settings = settings
        self.auto_ingest = auto_ingest
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._embedder = None
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._llm = llm
        self.load_notes: list[str] = []

    # ----- loading -------------------------------------------------------------------------
    def _index_is_stale(self) -> bool:
        from rag.ingest import seed_signature
        from rag.store import read_manifest

        manifest = read_manifest(self.settings.index_dir)
        if manifest is None:
            return True
        if not self.settings.seeds_dir.is_dir():
            return False  # serve the index we have; ingest will say the folder is missing
        return manifest.get("seed_stats") != seed_signature(self.settings.seeds_dir)

    def _load(self, ingest_if_stale: bool = True) -> _State:
        from rag.answer import ExtractiveAnswerer
        from rag.retrieve import HybridRetriever
        from rag.store import check_compatible, load_snapshot

        s = self.settings
        if ingest_if_stale and self.auto_ingest and self._index_is_stale():
            if not s.seeds_dir.is_dir() and not (s.index_dir / "current").exists():
                raise SeedsMissing(
                    f"documents folder {str(s.seeds_dir)!r} does not exist and there is no index yet; "
                    "create it or set RAG_SEEDS_DIR"
                )
            report = self.ingest()
            self.load_notes.append(
                f"indexed {report.chunks_total} chunks from {report.added + report.updated + report.unchanged} "
                f"documents in {report.seconds:.1f} s"
            )
        snap = load_snapshot(s.index_dir)
        try:
            check_compatible(snap.manifest, s.embed_model, s.chunk_size, s.chunk_overlap)
        except IndexIncompatible as err:
            raise IndexIncompatible(str(err).replace("--rebuild", "")) from None
        return _State(
            snapshot=snap,
            retriever=HybridRetriever(snap, mode=s.retriever, fusion=s.fusion, model_languages=s.embed_languages),
            extractive=ExtractiveAnswerer(snap, s.min_confidence, s.answer_sentences, s.embed_languages),
        )

    @property
    def state(self) -> _State:
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    self._state = self._load()
                state = self._state
        return state

    def warm_up(self) -> None:
        """Load index and models now (e.g. in the background while a bot connects)."""
        self.embed_query("warm up")

    @property
    def embedder(self):
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = self._make_query_embedder()
        return self._embedder

    def _make_query_embedder(self):
        from rag.embed import ONNX_FILE, OnnxEmbedder, SentenceTransformerEmbedder

        folder = self.state.snapshot.folder
        if self.settings.query_backend == "onnx" and (folder / ONNX_FILE).exists():
            return OnnxEmbedder(folder, self.settings.embed_model)
        return SentenceTransformerEmbedder(self.settings.embed_model)

    def ingest(self, rebuild: bool = False, progress: bool = False):
        """Re-index the seeds folder and swap the new index in; questions keep using the old one meanwhile."""
        from rag.ingest import ingest_folder

        report = ingest_folder(self.settings, rebuild=rebuild, progress=progress)
        if self._state is not None:
            with self._lock:
                new = self._load(ingest_if_stale=False)
                self._state = new
                self._embedder = None if report.rebuilt else self._embedder
        return report

    # ----- questions -----------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        hit = self._qcache.get(text)
        if hit is not None:
            self._qcache.move_to_end(text)
            return hit
        _ = self.state
        vec = self.embedder.embed_batch([text])[0]
        self._qcache[text] = vec
        if len(self._qcache) > 512:
            self._qcache.popitem(last=False)
        return vec

    def _prepare(self, question: str) -> tuple[str, list[str]]:
        if not isinstance(question, str) or not question.strip():
            raise BadQuestion("the question is empty; type a question about the documents")
        q = " ".join(question.split())
        notes = []
        limit = self.settings.max_question_chars
        if len(q) > limit:
            notes.append(f"question was {len(q)} characters; only the first {limit} were used")
            q = q[:limit]
        return q, notes

    def retrieval_query(self, question: str, history: list[tuple[str, str]] | None) -> str:
        """With no LLM to rewrite follow-ups, the previous question joins the retrieval query.

        Only for questions that lean on the conversation ("and who chaired it?"): a new,
        self-contained question must not inherit the last topic.
        """
        if not history or not is_follow_up(question):
            return question
        return f"{question} {history[-1][0]}"

    def retrieve(self, query: str, top_k: int | None = None):
        """Hits for `query` plus the query vector; the eval harness calls this directly."""
        state = self.state
        t0 = time.perf_counter()
        qvec = self.embed_query(query)  # needed by the dense channel and by the answerer's sentence scores
        t1 = time.perf_counter()
        hits = state.retriever.retrieve(qvec, query, top_k or self.settings.top_k)
        t2 = time.perf_counter()
        return hits, qvec, {"embed_query": (t1 - t0) * 1000, "retrieve": (t2 - t1) * 1000}

    def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> Answer:
        if self._llm is not None:
            return self._llm.ask(self, question, history)
        return self.ask_extractive(question, history)

    def ask_extractive(
        self, question: str, history: list[tuple[str, str]] | None = None, notes: list[str] | None = None
    ) -> Answer:
        start = time.perf_counter()
        q, prep_notes = self._prepare(question)
        state = self.state
        load_ms = (time.perf_counter() - start) * 1000
        query = self.retrieval_query(q, history)
        hits, qvec, timings = self.retrieve(query)
        t = time.perf_counter()
        result = state.extractive.answer(query, qvec, hits)
        timings["answer"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - start) * 1000
        if load_ms > 50:
            timings["load"] = load_ms
        return Answer(
            question=q,
            text=result.text,
            abstained=result.abstained,
            citations=result.citations,
            backend="extractive",
            notes=prep_notes + list(notes or []) + self._take_load_notes(),
            timings_ms=timings,
            confidence=result.confidence,
            retrieved=list(dict.fromkeys(h.chunk.source for h in hits)),
        )

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None) -> Iterator[str | Answer]:
        """Yield text pieces as they are produced, then the final Answer."""
        if self._llm is not None:
            yield from self._llm.ask_stream(self, question, history)
            return
        answer = self.ask_extractive(question, history)
        yield answer.text
        yield answer

    def _take_load_notes(self) -> list[str]:
        notes, self.load_notes = self.load_notes, []
        return notes

    @property
    def backend(self) -> str:
        return "llm" if self._llm is not None else "extractive"

    def sources(self) -> list[dict]:
        docs = self.state.snapshot.manifest.get("documents", {})
        return [
            {"source": src, "title": d["title"], "date": d["date"], "language": d["language"],
             "chunks": len(d["chunk_ids"])}
            for src, d in sorted(docs.items())
        ]


_REFERRING = {
    "he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "this", "that", "these",
    "those", "there", "then", "er", "sie", "es", "ihn", "ihm", "ihr", "dort", "dann", "dies", "das",
}


def is_follow_up(question: str) -> bool:
    """Does the question refer back ('he', 'it', 'there', 'and …') or is it too short to stand alone?"""
    import re

    words = re.findall(r"\w+", question.casefold())
    if not words:
        return False
    return words[0] in ("and", "und", "also", "what about") or bool(_REFERRING & set(words)) or len(words) <= 3


def build_engine(settings: Settings, auto_ingest: bool = True) -> Engine:
    """The engine a front end should use: with an LLM answerer when RAG_LLM_BASE_URL is set."""
    llm = None
    if settings.llm_base_url:
        from rag.llm_answer import LLMAnswerer

        llm = LLMAnswerer(settings)
    return Engine(settings, auto_ingest=auto_ingest, llm=llm)


__all__ = ["Engine", "build_engine", "IndexMissing"]
