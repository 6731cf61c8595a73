"""OpenAI-compatible chat completions over HTTP, bounded in time and in size (httpx).

Why not an SDK client (openai, llama-index's OpenAILike): their timeouts bound each read, not
the reply, so a server that trickles a byte a second, or streams forever, holds the caller for
good; and they read a body whole before anyone can cap it. Here one deadline covers connecting,
waiting and reading, and a watchdog shuts the socket when it passes, so even a read that is
already blocked returns on time. Bodies are read in pieces and abandoned past a size cap.

Errors are reported as they are: the server's own message, with the API key redacted, and a
`retry` flag that is true only for faults that may pass (connection failures, 408, 429, 5xx).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from rag.textsafe import clean

log = logging.getLogger(__name__)
RETRYABLE = {408, 429}


class ChatError(Exception):
    """A request that produced no usable reply; `str(err)` says why in words a user can act on."""

    def __init__(self, reason: str, retry: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.retry = retry
        self.status = status


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop", "length", ... as the server said; None if it never did
    complete: bool  # the server said it was done ([DONE] or a finish_reason)
    stopped: str | None = None  # "deadline" or "size": we stopped reading before the end


class _Watchdog:
    """Shut the request's sockets at the deadline, waking a read that is blocked on them."""

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._streams: list = []
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict) -> None:  # httpx's "trace" request extension
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._streams.append(info.get("return_value"))

    def _fire(self) -> None:
        self.fired = True
        for stream in self._streams:
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        self._timer.cancel()


def _server_message(status: int, body: bytes) -> str:
    """The error text a server sent: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or raw."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            text = str(err["message"])
        elif isinstance(err, str):
            text = err
        elif data.get("detail"):
            text = str(data["detail"])
        elif data.get("message"):
            text = str(data["message"])
    text = " ".join(text.split())
    return text[:300] + (" …" if len(text) > 300 else "") if text else "no message"


class ChatClient:
    def __init__(self, base_url: str, api_key: str, model: str, temperature: float, max_chars: int) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.temperature = temperature
        self.max_chars = max_chars
        self.shown_url = str(httpx.URL(base_url).copy_with(username=None, password=None, query=None))

    def _redact(self, text: str) -> str:
        return clean(text, [self.api_key])

    def _body(self, messages: list[tuple[str, str]], max_tokens: int, stream: bool) -> dict:
        return {
            "model": self.model,
            "messages": [{"role": r, "content": c} for r, c in messages],
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "stream": stream,
        }

    def _open(self, body: dict, deadline: float, limit: float):
        """Send the request; return (client, response, watchdog) with the status checked."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChatError(f"no complete reply within {limit:g} s (RAG_LLM_TIMEOUT)")
        headers = {"Accept": "text/event-stream" if body["stream"] else "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        dog = _Watchdog(deadline)
        # No keep-alive: each request's sockets are its own, so the watchdog can shut them.
        client = httpx.Client(timeout=httpx.Timeout(remaining), limits=httpx.Limits(max_keepalive_connections=0))
        try:
            request = client.build_request("POST", self.url, json=body, headers=headers,
                                           extensions={"trace": dog.trace})
            response = client.send(request, stream=True)
        except BaseException as err:
            dog.cancel()
            client.close()
            raise self._transport_error(err, dog, limit) from None
        if response.status_code >= 400:
            try:
                raw = self._read(response, 64 * 1024, deadline, dog)[0]
            except httpx.HTTPError:  # the body broke off (e.g. reset): the status still decides the retry
                raw = b""
            finally:
                response.close()
                client.close()
                dog.cancel()
            status = response.status_code
            raise ChatError(
                self._redact(f"HTTP {status} from {self.shown_url}: {_server_message(status, raw)}"),
                retry=status in RETRYABLE or status >= 500, status=status,
            )
        return client, response, dog

    def _transport_error(self, err: BaseException, dog: _Watchdog, limit: float) -> ChatError:
        if dog.fired or isinstance(err, httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
            return ChatError(f"no complete reply within {limit:g} s (RAG_LLM_TIMEOUT)")
        if isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ChatError(f"cannot connect to {self.shown_url}", retry=True)
        if isinstance(err, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            return ChatError(self._redact(f"the connection to {self.shown_url} broke: {err}"), retry=True)
        if isinstance(err, httpx.HTTPError):
            return ChatError(self._redact(f"{type(err).__name__}: {err}"))
        if isinstance(err, Exception):
            return ChatError(self._redact(f"{type(err).__name__}: {err}"))
        raise err  # KeyboardInterrupt and friends

    def _read(self, response: httpx.Response, cap: int, deadline: float, dog: _Watchdog) -> tuple[bytes, bool]:
        """Up to `cap` bytes of the body and whether it was cut there."""
        data = bytearray()
        for piece in response.iter_raw():
            data += piece
            if len(data) > cap:
                return bytes(data[:cap]), True
            if time.monotonic() >= deadline:
                dog.fired = True
                break
        return bytes(data), False

    # ----- one reply -----------------------------------------------------------------------
    def complete(self, messages, max_tokens: int, deadline: float, limit: float) -> Completion:
        client, response, dog = self._open(self._body(messages, max_tokens, False), deadline, limit)
        cap = 64 * 1024 + 12 * self.max_chars  # JSON may escape each character as \uXXXX\uXXXX
        try:
            raw, cut = self._read(response, cap, deadline, dog)
        except httpx.HTTPError as err:
            raise self._transport_error(err, dog, limit) from None
        finally:
            response.close()
            client.close()
            dog.cancel()
        if dog.fired:
            raise ChatError(f"no complete reply within {limit:g} s (RAG_LLM_TIMEOUT)")
        if cut:
            raise ChatError(f"the reply was larger than {cap // 1024} KiB (about {self.max_chars} characters, "
                            "RAG_LLM_MAX_CHARS); it was not read")
        try:
            data = json.loads(raw)
            if isinstance(data, dict) and data.get("error"):
                raise ChatError(self._redact(f"the server answered 200 with an error: {_server_message(200, raw)}"))
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason")
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except ChatError:
            raise
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            snippet = self._redact(raw[:120].decode("utf-8", "replace"))
            raise ChatError(f"the reply was not an OpenAI chat completion: {snippet!r}") from None
        if not text.strip():
            raise ChatError(f"the server answered 200 with an empty reply (finish_reason {finish!r})")
        if len(text) > self.max_chars:
            return Completion(text[: self.max_chars], finish, True, stopped="size")
        return Completion(text, finish, True)

    def stream(self, messages, max_tokens: int, deadline: float, limit: float) -> Iterator[str | Completion]:
        """Yield text pieces as they arrive, then a Completion (its `text` is all of them)."""
        client, response, dog = self._open(self._body(messages, max_tokens, True), deadline, limit)
        byte_cap = 64 * 1024 + 300 * self.max_chars  # SSE spends ~200 bytes of framing per token
        parts: list[str] = []
        chars = 0
        finish = None
        done = False
        stopped = None
        read = 0
        buf = b""
        try:
            for piece in response.iter_raw():
                read += len(piece)
                buf += piece
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    event = self._event(line.strip())
                    if event is None:
                        continue
                    if event == "[DONE]":
                        done = True
                        break
                    text, fin = event
                    finish = fin or finish
                    if text:
                        text = text[: self.max_chars - chars]
                        chars += len(text)
                        parts.append(text)
                        yield text
                    if chars >= self.max_chars:
                        stopped = "size"
                        break
                if done or stopped:
                    break
                if read > byte_cap:
                    stopped = "size"
                    break
                if time.monotonic() >= deadline:
                    dog.fired = True
                    break
        except httpx.HTTPError as err:
            if not parts:
                raise self._transport_error(err, dog, limit) from None
            stopped = "deadline" if dog.fired else None  # broke mid-way: what came is kept, marked unfinished
            log.info("stream broke after %d characters: %s", chars, self._redact(str(err)))
        finally:
            response.close()
            client.close()
            dog.cancel()
        if dog.fired and not stopped:
            stopped = "deadline"
            if not parts:
                raise ChatError(f"no complete reply within {limit:g} s (RAG_LLM_TIMEOUT)")
        text = "".join(parts)
        complete = done or finish is not None
        if not text.strip() and not stopped:
            if complete:
                raise ChatError(f"the server answered 200 with an empty stream (finish_reason {finish!r})")
            raise ChatError("the server answered 200, then ended the stream without sending anything "
                            "(no [DONE]); its log may say why")
        yield Completion(text, finish, complete, stopped)

    def _event(self, line: bytes):
        """One SSE line → None (nothing to use), "[DONE]", or (text, finish_reason)."""
        if not line.startswith(b"data:"):
            return None  # comments (": ping"), event:, id:, retry:, blank lines
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return "[DONE]"
        try:
            data = json.loads(payload)
        except ValueError:
            raise ChatError(f"the stream sent a line that is not JSON: {self._redact(payload[:80].decode('utf-8', 'replace'))!r}") from None
        if isinstance(data, dict) and data.get("error"):
            raise ChatError(self._redact(f"the server reported an error mid-stream: {_server_message(200, payload)}"))
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError):
            return None  # e.g. a usage-only chunk
        if not isinstance(choice, dict):
            return None
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        return (content if isinstance(content, str) else ""), choice.get("finish_reason")
