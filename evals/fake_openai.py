"""A small OpenAI-compatible chat server on 127.0.0.1: real HTTP, scripted replies.

For the tests and for `python -m evals.llm_faults` (which ships with the package, so the server
lives here rather than in tests/).

It speaks the shapes real servers send (llama.cpp's server, OpenAI): a streamed reply starts
with a role-only delta, carries empty deltas, ends with a finish_reason chunk and `data: [DONE]`;
errors are `{"error": {"message", "type", "code"}}`; a wrong key gets 401 with the key echoed
(as some servers do). Faults a real server can't be made to produce on demand are scripted.

Each request pops the next step from `script` (else `default`):
  {"content": str}            a normal reply (SSE when the request asks to stream)
  {"pieces": [str, ...]}      the streamed deltas, as given
  {"finish": "length"}        the finish_reason to report (default "stop")
  {"status": 400, "message"}  an error reply (any status) with that message
  {"status": 502, "reset": True}  the error's body breaks off: the connection is reset mid-way
                              (a proxy whose upstream died)
  {"delay": s}                wait before answering
  {"malformed": True}         broken JSON; {"empty": True}: an empty completion
  {"raw": {...}}              this JSON object as the reply (or the one SSE event)
  {"empty_stream": True}      200, then the stream closes with nothing (llama.cpp on a failed prompt)
  {"no_done": True}           content, then the stream closes: no finish_reason, no [DONE]
  {"endless": "sse"|"empty"|"json"}  never ends: content deltas, empty deltas, or a JSON body
                              (a request that does not stream gets the endless JSON body)
  {"trickle": s}              a small delta (or, not streaming, one character) every s seconds, forever
  {"hang": True}              accept the request and never send a byte
  {"stall_after": s}          headers and a first piece after s seconds, then silence
Requests and their headers are recorded.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[dict] = []
        self.default: dict = {"content": "Default reply [1]."}
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.require_key: str | None = None
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                if outer.require_key and self.headers.get("Authorization") != f"Bearer {outer.require_key}":
                    sent = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    return self._send(401, {"error": {"message": f"Incorrect API key provided: {sent}.",
                                                      "type": "invalid_request_error", "code": "invalid_api_key"}})
                step = outer.script.pop(0) if outer.script else outer.default
                try:
                    self._reply(step, body)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass  # the client hung up, as it should on an endless reply

            def _reply(self, step, body):
                if "delay" in step:
                    time.sleep(step["delay"])
                if step.get("hang"):
                    outer.stopping.wait()
                    return
                if "stall_after" in step:  # a first sign of life just before the deadline, then nothing
                    time.sleep(step["stall_after"])
                    if body.get("stream"):
                        self._start_stream()
                        self._event({"role": "assistant"})
                    else:
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        self._chunk(b'{"id": "x", "choices": [')
                    outer.stopping.wait()
                    return
                if step.get("reset"):
                    self.send_response(step["status"])
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "4096")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "upstream')
                    self.wfile.flush()
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.wfile.close()
                    self.rfile.close()
                    self.connection.close()  # the last reference, with linger 0: a TCP reset
                    self.wfile = io.BytesIO()  # for the server's own final flush
                    return
                if "status" in step:
                    return self._send(step["status"], {"error": {
                        "message": step.get("message", "scripted failure"), "type": "invalid_request_error",
                        "param": None, "code": step.get("code")}})
                if "raw" in step:  # this JSON object as the whole reply, or as every SSE event
                    if not body.get("stream"):
                        return self._send(200, step["raw"])
                    self._start_stream()
                    self._chunk(f"data: {json.dumps(step['raw'])}\n\n".encode() + b"data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if step.get("malformed"):
                    return self._raw(200, b'{"choices": [ {"message": ', "application/json")
                if step.get("endless") == "json" or (not body.get("stream") and (step.get("endless") or "trickle" in step)):
                    return self._endless_json(step.get("trickle", 0))
                content = "" if step.get("empty") else step.get("content", "")
                if body.get("stream"):
                    return self._stream(step, content)
                return self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [{"index": 0, "finish_reason": step.get("finish", "stop"),
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

            def _send(self, status, payload):
                self._raw(status, json.dumps(payload).encode(), "application/json")

            def _raw(self, status, data: bytes, ctype: str):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _event(self, delta: dict, finish=None):
                chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": "test",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())

            def _start_stream(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _stream(self, step, content: str):
                self._start_stream()
                if step.get("empty_stream"):
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self._event({"role": "assistant"})  # role-only first delta, as llama.cpp and OpenAI send
                if step.get("endless") or "trickle" in step:
                    n = 0
                    while not outer.stopping.is_set():
                        self._event({} if step.get("endless") == "empty" else {"content": f"word{n % 10} "})
                        n += 1
                        if "trickle" in step:
                            time.sleep(step["trickle"])
                    return
                pieces = step.get("pieces") or [content[i:i + 4] for i in range(0, len(content), 4)]
                for i, piece in enumerate(pieces):
                    self._event({"content": piece})
                    if i == 0:
                        self._event({})  # empty deltas happen between tokens
                if step.get("no_done"):
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self._event({}, step.get("finish", "stop"))
                self._chunk(b"data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")

            def _endless_json(self, pause: float = 0):
                """A JSON body that never ends: fast, or one character every `pause` seconds."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._chunk(b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "')
                while not outer.stopping.is_set():
                    self._chunk(b"l" if pause else b"la " * 1000)
                    time.sleep(pause)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    super().handle_error(request, client_address)  # a client hanging up is expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def last_user_message(self) -> str:
        return next(m["content"] for m in reversed(self.requests[-1]["messages"]) if m["role"] == "user")


def main() -> None:  # `python -m evals.fake_openai "reply"`: a server to try the CLI against by hand
    fake = FakeOpenAI()
    if len(sys.argv) > 1:
        fake.default = json.loads(sys.argv[1]) if sys.argv[1].startswith("{") else {"content": sys.argv[1]}
    fake.start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
