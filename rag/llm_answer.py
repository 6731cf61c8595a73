"""LLM answers through any OpenAI-compatible chat endpoint, with the extractive answer as the safety net.

Retrieval is the engine's own; the LLM only writes the answer from numbered sources. Its citation
markers are validated and renumbered (rag.citations). Any failure of the endpoint (timeout,
refused connection, 429, 5xx, an empty or malformed completion) is retried a bounded number of
times with backoff, then the user gets the extractive answer with a note saying why: a broken LLM
never breaks the bot. The API key is redacted from every message that could reach a user or log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from rag.citations import has_claims, renumber, Renumberer
from rag.config import Settings
from rag.errors import LLMUnavailable
from rag.prompt import NOT_FOUND, answer_messages, expand_messages, rewrite_messages
from rag.records import Answer, Citation, Hit

log = logging.getLogger(__name__)


class LLMAnswerer:
    def __init__(self, settings: Settings, backoff_s: float = 0.5) -> None:
        self.settings = settings
        self.backoff_s = backoff_s
        self._llm = None

    # ----- transport -------------------------------------------------------------------
    @property
    def llm(self):
        if self._llm is None:
            from llama_index.llms.openai_like import OpenAILike

            s = self.settings
            self._llm = OpenAILike(
                model=s.llm_model,
                api_base=s.llm_base_url,
                api_key=s.llm_api_key or "unused",  # local servers need none, the client needs a string
                is_chat_model=True,
                context_window=8192,
                timeout=s.llm_timeout,
                max_retries=0,  # retries are ours: bounded, and followed by the extractive fallback
                temperature=s.llm_temperature,
                max_tokens=s.llm_max_tokens,
            )
        return self._llm

    def _redact(self, text: str) -> str:
        key = self.settings.llm_api_key
        return text.replace(key, "***") if key else text

    def _reason(self, err: Exception) -> str:
        status = getattr(err, "status_code", None)
        name = type(err).__name__
        if status:
            return f"HTTP {status} from {self.settings.llm_base_url}"
        if "Timeout" in name:
            return f"no reply from {self.settings.llm_base_url} within {self.settings.llm_timeout:g} s"
        if "Connection" in name:
            return f"cannot connect to {self.settings.llm_base_url}"
        return self._redact(f"{name}: {err}")[:200]

    @staticmethod
    def _messages(pairs: list[tuple[str, str]]):
        from llama_index.core.llms import ChatMessage

        return [ChatMessage(role=role, content=content) for role, content in pairs]

    def _with_retries(self, call):
        last = None
        for attempt in range(self.settings.llm_retries + 1):
            try:
                return call()
            except Exception as err:  # the client raises many types; all mean "not now"
                last = err
                log.warning("LLM call failed (attempt %d): %s", attempt + 1, self._reason(err))
                if attempt < self.settings.llm_retries:
                    time.sleep(self.backoff_s * (2 ** attempt))
        raise LLMUnavailable(self._reason(last)) from None

    def complete(self, pairs: list[tuple[str, str]]) -> str:
        def call() -> str:
            text = (self.llm.chat(self._messages(pairs)).message.content or "").strip()
            if not text:
                raise ValueError("empty completion")
            return text

        return self._with_retries(call)

    # ----- question handling -----------------------------------------------------------
    def standalone(self, question: str, history) -> str:
        if not history:
            return question
        try:
            return self.complete(rewrite_messages(question, history)).splitlines()[0].strip() or question
        except LLMUnavailable:
            return f"{question} {history[-1][0]}"

    def expand(self, engine, question: str) -> str:
        if not self.settings.llm_expand_query:
            return question
        languages = sorted({d["language"] for d in engine.sources()} - {"und"}) or ["English"]
        try:
            return question + "\n" + self.complete(expand_messages(question, languages))
        except LLMUnavailable:
            return question

    def _retrieve(self, engine, question: str, history):
        q, notes = engine._prepare(question)
        standalone = self.standalone(q, history)
        hits, _, timings = engine.retrieve(self.expand(engine, standalone))
        return q, standalone, notes, hits, timings

    def _finish(self, q, raw: str, renum: Renumberer, hits: list[Hit], notes, timings) -> Answer:
        text = raw.strip()
        abstained = NOT_FOUND.lower().rstrip(".") in text.lower()
        cited = renum.cited()
        citations = [
            Citation(n=renum.mapping[o], source=hits[o - 1].chunk.source, title=hits[o - 1].chunk.title,
                     date=hits[o - 1].chunk.date, snippet=hits[o - 1].chunk.text.strip(),
                     score=round(hits[o - 1].score, 4))
            for o in cited
        ]
        if renum.dropped:
            notes.append(f"dropped citation markers that matched no source: {sorted(set(renum.dropped))}")
        if not abstained and not citations and has_claims(text):
            notes.append("the answer cites no source; check it against the documents")
        return Answer(question=q, text=text, abstained=abstained, citations=[] if abstained else citations,
                      backend="llm", notes=notes, timings_ms=timings,
                      retrieved=list(dict.fromkeys(h.chunk.source for h in hits)))

    def ask(self, engine, question: str, history=None) -> Answer:
        start = time.perf_counter()
        q, standalone, notes, hits, timings = self._retrieve(engine, question, history)
        t = time.perf_counter()
        try:
            raw = self.complete(answer_messages(standalone, hits))
        except LLMUnavailable as err:
            return self._fallback(engine, question, history, err)
        text, renum = renumber(raw, len(hits))
        timings["answer"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - start) * 1000
        return self._finish(q, text, renum, hits, notes, timings)

    def ask_stream(self, engine, question: str, history=None) -> Iterator[str | Answer]:
        start = time.perf_counter()
        q, standalone, notes, hits, timings = self._retrieve(engine, question, history)
        t = time.perf_counter()
        renum = Renumberer(len(hits))
        parts: list[str] = []
        try:
            stream = self._with_retries(lambda: self._open_stream(answer_messages(standalone, hits)))
            for delta in stream:
                piece = renum.feed(delta)
                if piece:
                    parts.append(piece)
                    yield piece
            tail = renum.finish()
            if tail:
                parts.append(tail)
                yield tail
            if not "".join(parts).strip():
                raise LLMUnavailable("empty completion")
        except LLMUnavailable as err:
            if parts:
                yield "\n\n"
            fallback = self._fallback(engine, question, history, err)
            yield fallback.text
            yield fallback
            return
        except Exception as err:  # the stream broke after it started
            fallback = self._fallback(engine, question, history, LLMUnavailable(self._reason(err)))
            yield "\n\n" + fallback.text
            yield fallback
            return
        timings["answer"] = (time.perf_counter() - t) * 1000
        timings["total"] = (time.perf_counter() - start) * 1000
        yield self._finish(q, "".join(parts), renum, hits, notes, timings)

    def _open_stream(self, pairs) -> Iterator[str]:
        """Start the stream and pull the first piece, so connection errors surface inside the retry."""
        gen = self.llm.stream_chat(self._messages(pairs))
        first = next(gen, None)
        if first is None:
            raise ValueError("empty completion")

        def pieces():
            yield first.delta or ""
            for chunk in gen:
                yield chunk.delta or ""

        return pieces()

    def _fallback(self, engine, question, history, err: LLMUnavailable) -> Answer:
        note = f"LLM unavailable: {self._redact(str(err))}; showing the extracted answer"
        log.warning(note)
        return engine.ask_extractive(question, history, notes=[note])
