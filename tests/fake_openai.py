"""A small OpenAI-compatible chat server on 127.0.0.1 for tests: real HTTP, scripted replies.

Each request pops the next scripted step: {"content": str} answers normally (or as SSE when the
request asks to stream), {"status": 429|500} fails, {"delay": s} answers late, {"malformed": True}
returns broken JSON, {"empty": True} returns an empty completion. Requests are recorded.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[dict] = []
        self.default: dict = {"content": "Default reply [1]."}
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                step = outer.script.pop(0) if outer.script else outer.default
                if "delay" in step:
                    time.sleep(step["delay"])
                if "status" in step:
                    return self._send(step["status"], {"error": {"message": "scripted failure", "type": "server_error"}})
                if step.get("malformed"):
                    return self._raw(200, b'{"choices": [ {"message": ', "application/json")
                content = "" if step.get("empty") else step.get("content", "")
                if body.get("stream"):
                    return self._stream(content, step.get("pieces"))
                return self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [{"index": 0, "finish_reason": "stop",
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

            def _stream(self, content: str, pieces=None):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                pieces = pieces or [content[i:i + 4] for i in range(0, len(content), 4)]
                for i, piece in enumerate(pieces):
                    chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": "test",
                             "choices": [{"index": 0, "delta": ({"role": "assistant"} if i == 0 else {}) | {"content": piece},
                                          "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                end = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": "test",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def last_user_message(self) -> str:
        return next(m["content"] for m in reversed(self.requests[-1]["messages"]) if m["role"] == "user")


def main() -> None:  # `python -m tests.fake_openai "reply"`: a server to try the CLI against by hand
    import sys

    fake = FakeOpenAI()
    if len(sys.argv) > 1:
        fake.default = {"content": sys.argv[1]}
    fake.start()
    print(fake.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
