"""The one facade every front end calls: `Engine.ask(question, history) -> Answer`.

The engine owns the question flow:

    prepare → (condense a follow-up) → (translate) → retrieve → answer → verify → fall back

Answerers (rag.answering: extractive, rag.llm_answer: LLM) only answer; they never call back
into the engine. An LLM reply is verified sentence by sentence before it is shown
(rag.grounding); if nothing in it stands, or the LLM fails, the extractive answer is shown with
a note saying why. Every string in an Answer is cleaned of control characters and the API key.

The engine owns the lazily loaded state (stored index, retriever, extractive answerer) and swaps it
as a unit after a re-index. Each question reads the state once and passes it down, so a swap in
the middle of a question cannot mix two indexes. Nothing loads at import or construction time;
the first `ask` (or `warm_up`) pays for it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from rag.config import Settings
from rag.errors import (
    BadQuestion, IndexIncompatible, IngestBusy, IngestFailed, LLMUnavailable, SeedsMissing,
)
from rag.followup import is_follow_up, joined_query, sane_rewrite
from rag.clean import normalize
from rag.records import Answer, AnswerRequest, Citation, Draft, Hit, Note
from rag.spelling import Dictionaries, respell
from rag.textsafe import clean

SHOWN_READINGS = 3  # re-read words named in the note; more are counted ("and 2 more words")

if TYPE_CHECKING:  # imported when loading, so `import rag.engine` stays light
    from rag.answering import Extractive
    from rag.index import DocInfo, Index
    from rag.retrieve import HybridRetriever

log = logging.getLogger(__name__)
QUERY_CACHE = 512  # query vectors kept: repeated questions skip the embedder


@dataclass
class _State:
    index: Index  # snapshot files or PostgreSQL
    retriever: HybridRetriever
    extractive: Extractive  # over this index
    notes: list[Note] = field(default_factory=list)  # from loading; the next answer shows them

    def take_notes(self) -> list[Note]:
        notes, self.notes = self.notes, []
        return notes


class Engine:
    def __init__(self, settings: Settings, auto_ingest: bool = True, llm=None) -> None:
        self.settings = settings
        self.auto_ingest = auto_ingest
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._embedder = None
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._qcache_lock = threading.Lock()  # the bot asks from several threads at once
        self._llm = llm
        self._dictionaries = Dictionaries()  # for telling a slip from a real word (rag.spelling)

    # ----- loading -------------------------------------------------------------------------
    def _index_is_stale(self) -> bool:
        from rag.index import stored_manifest
        from rag.ingest import seed_signature
        from rag.store import rebuild_reason

        manifest = stored_manifest(self.settings)
        if manifest is None or rebuild_reason(manifest, self.settings):
            return True  # nothing built yet, or built by another model, chunking or pipeline version
        if not self.settings.seeds_dir.is_dir():
            return False  # serve the index we have; ingest will say the folder is missing
        try:
            return manifest.seed_stats != seed_signature(self.settings.seeds_dir, self.settings.allow_outside_links)
        except (SeedsMissing, OSError):  # the folder vanished meanwhile: serve the index we have
            return False

    def _load(self, ingest_if_stale: bool = True) -> _State:
        from rag.answer import ExtractiveAnswerer
        from rag.answering import Extractive
        from rag.index import has_index, open_index
        from rag.retrieve import HybridRetriever
        from rag.store import check_compatible

        s = self.settings
        notes = []
        if ingest_if_stale and self.auto_ingest and self._index_is_stale():
            if not s.seeds_dir.is_dir() and not has_index(s):
                raise SeedsMissing(
                    f"documents folder {str(s.seeds_dir)!r} does not exist and there is no index yet; "
                    "create it, or set RAG_SEEDS_DIR in the environment or in a .env file in the working directory"
                )
            try:
                report = self.ingest(progress=True)  # silent unless it takes a while (rag.progress)
            except (IngestBusy, IngestFailed, SeedsMissing) as err:
                if not has_index(s):
                    raise
                # Fail soft: the last good index still answers; the note says why it is not fresh.
                log.info("answering from the last index: %s", err)
                why = "answered from the last index; updating it failed"
                notes.append(Note(why, f"{why}: {err}"))  # err names folders and process ids
            else:
                notes.append(Note(
                    f"indexed {report.chunks_total} chunks from {report.added + report.updated + report.unchanged} "
                    f"documents in {report.seconds:.1f} s"
                ))
        index = open_index(s)
        try:
            check_compatible(index.manifest, s.embed_model, s.chunk_size, s.chunk_overlap)
        except IndexIncompatible as err:
            # Plain `rag ingest` rebuilds an incompatible index (and so would the next question).
            raise IndexIncompatible(err.reason, "run `rag ingest` to build it again from the documents") from None
        return _State(
            index=index,
            retriever=HybridRetriever(index, mode=s.retriever, fusion=s.fusion, model_languages=s.embed_languages,
                                      lexicon_files=s.lexicon_files),
            extractive=Extractive(ExtractiveAnswerer(index, s.min_confidence, s.answer_sentences, s.embed_languages,
                                                     s.lexicon_files)),
            notes=notes,
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
        """Load index, models and word lists now (e.g. in the background while a bot connects)."""
        self.embed_query("warm up")
        if self.settings.respell:
            self._dictionaries.knows("warm")

    @property
    def embedder(self):
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = self._make_query_embedder()
        return self._embedder

    def _make_query_embedder(self):
        from rag.embed import SentenceTransformerEmbedder
        from rag.model_cache import load_query_embedder

        s = self.settings
        if s.query_backend == "onnx":
            return load_query_embedder(s.model_cache, s.embed_model, self.state.index.manifest.embedder)
        return SentenceTransformerEmbedder(s.embed_model)

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

    def reload(self) -> None:
        """Swap in the stored index anew, e.g. after `rag ingest` ran in another process.

        Questions already running finish on the state they started with; the query embedder
        and its cache stay (same model: the settings that choose it cannot change at run time).
        """
        with self._lock:
            self._state = self._load(ingest_if_stale=False)

    # ----- questions -----------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        with self._qcache_lock:
            hit = self._qcache.get(text)
            if hit is not None:
                self._qcache.move_to_end(text)
                return hit
        vec = self.embedder.embed_batch([text])[0]  # outside the lock: questions embed in parallel
        with self._qcache_lock:
            self._qcache[text] = vec
            if len(self._qcache) > QUERY_CACHE:
                self._qcache.popitem(last=False)
        return vec

    def forget_query_vectors(self) -> None:
        """Empty the query-vector cache, so the next questions pay for embedding (benchmarks)."""
        with self._qcache_lock:
            self._qcache.clear()

    def _prepare(self, question: str) -> tuple[str, list[Note]]:
        if not isinstance(question, str) or not clean(question).strip():
            raise BadQuestion("the question is empty; type a question about the documents")
        q = " ".join(normalize(clean(question)).split())  # invisible characters as in the documents
        notes = []
        limit = self.settings.max_question_chars
        if len(q) > limit:
            notes.append(Note(f"question was {len(q)} characters; only the first {limit} were used"))
            q = q[:limit]
        return q, notes

    def retrieve(self, query: str, top_k: int | None = None):
        """Hits for `query`, the query vector and timings; the eval harness calls this directly."""
        st = self.state
        return self._retrieve(st, self._respell(st, query)[0], top_k)

    def _respell(self, st: _State, q: str) -> tuple[str, list[Note]]:
        """`q` with its slips of the hand re-read as document words (rag.spelling, RAG_RESPELL),
        and one note for them (at most SHOWN_READINGS named, so other notes keep their room)."""
        if not self.settings.respell:
            return q, []
        q, readings = respell(q, st.extractive.chunks_holding, self._dictionaries.knows)
        if not readings:
            return q, []
        named = ", ".join(f'"{r.typed}" as "{r.read}"' for r in readings[:SHOWN_READINGS])
        extra = len(readings) - SHOWN_READINGS
        more = f" and {extra} more word{'s' if extra > 1 else ''}" if extra > 0 else ""
        return q, [Note(f"read {named}{more}")]

    def channel_rankings(self, query: str, depth: int) -> tuple[dict, dict[int, str]]:
        """Each retrieval channel's ranking before fusion, and the source of every chunk in them.

        For fusion tuning (evals/tune.py), which fuses these many ways without asking again.
        """
        st = self.state
        query = self._respell(st, query)[0]  # as `retrieve` reads it
        results = st.retriever.rankings(self.embed_query(query), query, depth)
        ids = sorted({int(i) for ranked, _ in results.values() for i in ranked})
        chunks = st.index.read(lambda view: view.fetch(ids, None))
        return results, {c.id: c.chunk.source for c in chunks}

    def _retrieve(self, st: _State, query: str, top_k: int | None = None, memo=None):
        """Hits, query vector and timings; `memo` (st.extractive.memo) keeps what re-ranking read
        for the answer to the same question."""
        t0 = time.perf_counter()
        qvec = self.embed_query(query)  # needed by the dense channel and by the answerer's sentence scores
        t1 = time.perf_counter()
        hits = st.retriever.retrieve(qvec, query, top_k or self.settings.top_k)
        # The passages the answer reads (RAG_TOP_K) are re-ordered by the evidence of their best
        # sentence; a deeper list (an eval's recall@100) keeps the fused order below them, since
        # reading 300 passages' sentences would cost ~150 ms a question.
        read = self.settings.top_k
        hits = st.extractive.rerank(query, qvec, hits[:read], memo) + hits[read:]
        t2 = time.perf_counter()
        return hits, qvec, {"embed_query": (t1 - t0) * 1000, "retrieve": (t2 - t1) * 1000}

    def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> Answer:
        answer = None
        for item in self._flow(question, history, stream=False):
            answer = item
        return answer

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None) -> Iterator[str | Answer]:
        """Yield text pieces as they are verified, then the final Answer (its text is their concatenation)."""
        yield from self._flow(question, history, stream=True)

    # ----- the flow ------------------------------------------------------------------------
    def _flow(self, question: str, history, stream: bool) -> Iterator[str | Answer]:
        start = time.perf_counter()
        q, notes = self._prepare(question)
        st = self.state  # read once: a re-index during this question does not reach it
        timings: dict[str, float] = {}
        if (load_ms := (time.perf_counter() - start) * 1000) > 50:
            timings["load"] = load_ms
        notes += st.take_notes()
        typed = q  # the answer keeps the question as asked; the pipeline reads it as re-read
        t = time.perf_counter()
        q, respelt = self._respell(st, q)
        notes += respelt
        timings["respell"] = (time.perf_counter() - t) * 1000
        llm = self._llm
        deadline, limit = llm.deadline() if llm is not None else (None, 0.0)
        asked, query = self._condense(q, history or [], deadline, limit, timings)
        if query != q:  # joined with (or rewritten from) the conversation, whose questions are kept as typed
            query = self._respell(st, query)[0]
        if llm is not None and self.settings.llm_expand_query:
            query = self._translate(st, query, deadline, limit)
        memo = st.extractive.memo(query)  # this question's only: re-ranking and the answer share it
        hits, qvec, t = self._retrieve(st, query, memo=memo)
        timings.update(t)
        request = AnswerRequest(asked, query, tuple(hits), qvec, deadline, limit)
        t = time.perf_counter()
        if llm is None:
            answer = self._from_draft(st.extractive.answer(request, memo), "extractive", typed, hits, notes)
        else:
            answer = None
            for item in self._llm_answer(st, llm, request, typed, notes, stream, memo):
                if isinstance(item, Answer):
                    answer = item
                else:
                    yield item
        timings["answer"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - start) * 1000
        answer.timings_ms = timings
        if llm is None or answer.backend == "extractive":
            yield answer.text
        yield answer

    def _condense(self, q: str, history, deadline, limit: float, timings) -> tuple[str, str]:
        """(question to answer, retrieval query) under the one follow-up rule."""
        if not history or not is_follow_up(q):
            return q, q
        if self._llm is not None:
            t = time.perf_counter()
            try:  # at most a third of the answer's time, so the answer itself keeps the rest
                raw = self._llm.rewrite(q, history, min(deadline, time.monotonic() + limit / 3), limit)
                standalone = sane_rewrite(clean(raw, [self.settings.llm_api_key]), q, history)
            except LLMUnavailable as err:
                log.warning("follow-up rewrite failed: %s", err)
                standalone = None
            timings["rewrite"] = (time.perf_counter() - t) * 1000
            if standalone:
                return standalone, standalone
            log.info("kept the user's question: the rewrite was empty, too long or unrelated")
        return f"{q} (follow-up to: {history[-1][0]})", joined_query(q, history)

    def _translate(self, st: _State, query: str, deadline, limit: float) -> str:
        """The query plus its translations into the documents' languages (sane lines only)."""
        languages = sorted(st.index.languages) or ["en"]
        try:
            raw = self._llm.translate(query, languages, min(deadline, time.monotonic() + limit / 3), limit)
        except LLMUnavailable as err:
            log.warning("query translation failed: %s", err)
            return query
        lines = [ln.strip() for ln in clean(raw, [self.settings.llm_api_key]).splitlines() if ln.strip()]
        lines = [ln for ln in lines[: len(languages)] if len(ln) <= 3 * len(query) + 40]
        return "\n".join([query, *lines])

    def _llm_answer(self, st: _State, llm, request: AnswerRequest, q: str, notes: list[Note], stream: bool, memo=None):
        """Stream the verified parts of the LLM's reply; fall back to the extractive answer if none.
        `memo`: the question's extractive memo (st.extractive.memo), filled by re-ranking."""
        from rag.grounding import Verifier

        hits = list(request.hits)
        verifier = Verifier([f"{h.chunk.title}\n{h.chunk.text}" for h in hits], request.question,
                            (self.settings.llm_api_key,))
        draft: Draft | None = None
        failure: str | None = None
        try:
            for item in (llm.stream(request) if stream else _whole(llm.answer(request))):
                if isinstance(item, Draft):
                    draft = item
                elif shown := verifier.feed(item):
                    yield shown
        except LLMUnavailable as err:
            failure = str(err)
        except Exception as err:  # a server reply no one foresaw must not break the answer
            log.exception("LLM answer failed")
            failure = clean(f"{type(err).__name__}: {err}", [self.settings.llm_api_key])[:200]
        if tail := verifier.finish():
            yield tail
        v = verifier.verdict()
        if v.discarded:
            cut = f" ({draft.cut_short})" if draft is not None and draft.cut_short else ""
            # A failure's text names the LLM's URL and quotes its server: operators only (Note.detail).
            if failure and not v.claims:
                why = Note("LLM unavailable", f"LLM unavailable: {failure}")
            elif failure:
                why = Note("the LLM's reply broke off before any sentence could be verified",
                           f"the LLM's reply broke off ({failure}) before any sentence could be verified")
            elif not v.claims:
                why = Note(f"the LLM's reply was discarded: it states nothing the sources could back{cut}")
            elif all(r == "it cites no source" for r in v.dropped_sentences):
                why = Note(f"the LLM's reply was discarded: it cites no source{cut}")
            else:
                why = Note(f"the LLM's reply was discarded: no sentence is backed by the source it cites{cut}")
            log.info(clean(str(why), [self.settings.llm_api_key]))
            shown = "; showing the extracted answer"
            fallback = self._from_draft(st.extractive.answer(request, memo), "extractive", q, hits,
                                        notes + [Note(why.text + shown, why.detail and why.detail + shown)])
            yield fallback
            return
        notes = notes + _notes(v, draft, failure)
        cited = [hits[n - 1] for n in v.cited]
        citations = tuple(_citation(i, h) for i, h in enumerate(cited, start=1))
        share = v.shown_claims / v.claims if v.claims else 0.0
        confidence = 0.0 if v.abstained else st.extractive.evidence(request, cited, memo) * share
        final = Draft(v.text, grounded=True, citations=citations, abstained=v.abstained, confidence=confidence)
        yield self._from_draft(final, "llm", q, hits, notes)

    def _from_draft(self, d: Draft, backend: str, q: str, hits: list[Hit], notes: list[Note]) -> Answer:
        """The Answer a front end shows; every string in it is cleaned (controls, API key)."""
        secrets = (self.settings.llm_api_key,)
        return Answer(
            question=q,
            text=clean(d.text, secrets),
            abstained=d.abstained,
            citations=[] if d.abstained else [_clean_citation(c, secrets) for c in d.citations],
            backend=backend,
            notes=[Note(clean(n.text, secrets), clean(n.detail, secrets)) for n in notes],
            confidence=d.confidence,
            retrieved=[clean(s, secrets) for s in dict.fromkeys(h.chunk.source for h in hits)],
        )

    @property
    def backend(self) -> str:
        return "llm" if self._llm is not None else "extractive"

    def sources(self) -> list[DocInfo]:
        """The indexed documents, names and titles cleaned for a terminal or a chat."""
        return [replace(d, source=clean(d.source), title=clean(d.title)) for d in self.state.index.documents()]


def _whole(draft: Draft) -> Iterator[str | Draft]:
    yield draft.text
    yield draft


def _citation(n: int, hit: Hit) -> Citation:
    c = hit.chunk
    return Citation(n=n, source=c.source, title=c.title, date=c.date, snippet=c.text.strip(), score=round(hit.score, 4))


def _clean_citation(c: Citation, secrets) -> Citation:
    return Citation(n=c.n, source=clean(c.source, secrets), title=clean(c.title, secrets),
                    date=clean(c.date, secrets) if c.date else c.date, snippet=clean(c.snippet, secrets), score=c.score)


def _notes(v, draft: Draft | None, failure: str | None) -> list[Note]:
    """What the user should know about a shown LLM answer."""
    notes = []
    if failure:
        notes.append(Note("the LLM's reply was cut short", f"the LLM's reply was cut short: {failure}"))
    elif draft is not None and draft.cut_short:
        notes.append(Note(draft.cut_short))
    if v.dropped_sentences:
        n = len(v.dropped_sentences)
        reasons = ", ".join(sorted(set(v.dropped_sentences)))
        notes.append(Note(f"left out {n} sentence{'s' if n > 1 else ''} of the LLM's reply ({reasons})"))
    if v.dropped_markers:
        shown = ", ".join(f"[{m}]" for m in dict.fromkeys(v.dropped_markers))
        notes.append(Note(f"dropped citation markers that name no source: {shown}"))
    if v.ungrounded_markers:
        notes.append(Note(f"dropped {len(v.ungrounded_markers)} citation(s) to sources that do not contain the sentence's words"))
    return notes


def build_engine(settings: Settings, auto_ingest: bool = True) -> Engine:
    """The engine a front end should use: with an LLM answerer when RAG_LLM_BASE_URL is set."""
    llm = None
    if settings.llm_base_url:
        from rag.llm_answer import LLMAnswerer

        llm = LLMAnswerer(settings)
    return Engine(settings, auto_ingest=auto_ingest, llm=llm)


__all__ = ["Engine", "build_engine"]
