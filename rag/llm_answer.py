"""LLM answers through any OpenAI-compatible chat endpoint (rag.llm_http), behind the answerer interface.

The LLM only writes: it gets the question and the numbered sources the engine retrieved, and
returns a draft whose `[n]` markers the engine verifies before anyone sees it (rag.grounding).
It also offers the two small jobs the engine may ask of it: make a follow-up standalone, and
translate a question into the documents' languages, each with a small `max_tokens`.

Faults that may pass (connection refused, 408, 429, 5xx) are retried with backoff while the
answer's deadline allows; anything else (400, 401, an empty or malformed reply) is reported at
once, in the server's own words with the API key redacted, as `LLMUnavailable`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator

from rag.config import Settings
from rag.errors import LLMUnavailable
from rag.prompt import answer_messages, expand_messages, rewrite_messages
from rag.records import AnswerRequest, Draft
from rag.textsafe import clean

log = logging.getLogger(__name__)
REWRITE_TOKENS = 96
TRANSLATE_TOKENS_PER_LANGUAGE = 64


class LLMAnswerer:
    backend = "llm"

    def __init__(self, settings: Settings, backoff_s: float = 0.5) -> None:
        self.settings = settings
        self.backoff_s = backoff_s
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from rag.llm_http import ChatClient  # httpx stays off the import path of `rag ask`

            s = self.settings
            self._client = ChatClient(s.llm_base_url, s.llm_api_key, s.llm_model, s.llm_temperature, s.llm_max_chars)
        return self._client

    def deadline(self) -> tuple[float, float]:
        """(deadline, limit): every LLM request for one answer shares RAG_LLM_TIMEOUT."""
        return time.monotonic() + self.settings.llm_timeout, self.settings.llm_timeout

    # ----- transport with bounded retries ------------------------------------------------
    def _retrying(self, call: Callable, deadline: float):
        from rag.llm_http import ChatError

        attempt = 0
        while True:
            try:
                return call()
            except ChatError as err:
                reason = clean(str(err), [self.settings.llm_api_key])
                wait = self.backoff_s * 2 ** attempt
                if not err.retry or attempt >= self.settings.llm_retries or time.monotonic() + wait >= deadline:
                    raise LLMUnavailable(reason) from None
                log.warning("LLM request failed (attempt %d, retrying): %s", attempt + 1, reason)
                time.sleep(wait)
                attempt += 1

    def _complete(self, messages, max_tokens: int, deadline: float, limit: float) -> str:
        return self._retrying(lambda: self.client.complete(messages, max_tokens, deadline, limit), deadline).text

    # ----- the answerer interface --------------------------------------------------------
    def answer(self, request: AnswerRequest) -> Draft:
        deadline, limit = self._limits(request)
        done = self._retrying(
            lambda: self.client.complete(answer_messages(request.question, list(request.hits)),
                                         self.settings.llm_max_tokens, deadline, limit), deadline)
        return Draft(done.text, grounded=False, cut_short=self._cut_note(done, limit))

    def stream(self, request: AnswerRequest) -> Iterator[str | Draft]:
        """Text pieces as they arrive, then the Draft. Retries happen only before the first piece."""
        from rag.llm_http import Completion

        deadline, limit = self._limits(request)
        messages = answer_messages(request.question, list(request.hits))
        first: list = []

        def start():
            gen = self.client.stream(messages, self.settings.llm_max_tokens, deadline, limit)
            first[:] = [next(gen)]  # connection and HTTP errors surface here, inside the retry
            return gen

        gen = self._retrying(start, deadline)
        from rag.llm_http import ChatError

        try:
            for item in itertools.chain(first, gen):
                if isinstance(item, Completion):
                    yield Draft(item.text, grounded=False, cut_short=self._cut_note(item, limit))
                    return
                yield item
        except ChatError as err:  # after some text: the stream broke mid-way
            raise LLMUnavailable(clean(str(err), [self.settings.llm_api_key])) from None

    def _limits(self, request: AnswerRequest) -> tuple[float, float]:
        if request.deadline is None:
            return self.deadline()
        return request.deadline, request.limit_s or self.settings.llm_timeout

    def _cut_note(self, done, limit: float) -> str | None:
        if done.stopped == "deadline":
            return f"the LLM's reply was cut short: not complete within {limit:g} s (RAG_LLM_TIMEOUT)"
        if done.stopped == "size":
            return f"the LLM's reply was cut short at {self.settings.llm_max_chars} characters (RAG_LLM_MAX_CHARS)"
        if done.finish_reason == "length":
            return f"the LLM's reply was cut short: it reached max_tokens ({self.settings.llm_max_tokens}, RAG_LLM_MAX_TOKENS)"
        if not done.complete:
            return "the LLM's reply was cut short: the stream ended before the server said it was complete"
        return None

    # ----- small jobs for the engine ------------------------------------------------------
    def rewrite(self, question: str, history: list[tuple[str, str]], deadline: float, limit: float) -> str:
        """The follow-up as a standalone question (raw; the engine checks it is sane)."""
        return self._complete(rewrite_messages(question, history), REWRITE_TOKENS, deadline, limit)

    def translate(self, question: str, languages: list[str], deadline: float, limit: float) -> str:
        return self._complete(expand_messages(question, languages),
                              TRANSLATE_TOKENS_PER_LANGUAGE * max(1, len(languages)), deadline, limit)
