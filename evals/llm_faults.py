"""How long each hostile LLM server takes to end an answer, next to the deadline it must keep.

Runs the scripted OpenAI-compatible server (evals/fake_openai.py) through each fault, with and
without streaming, and prints the seconds until the answer was complete, the requests sent, who
answered and the note the user got:

    python -m evals.llm_faults [--timeout 2]
"""

from __future__ import annotations

import time

CASES = [
    ("endless SSE stream", {"endless": "sse"}),
    ("endless empty deltas", {"endless": "empty"}),
    ("trickle, 1 delta / 0.9 s", {"trickle": 0.9}),
    ("endless JSON body", {"endless": "json"}),
    ("silent after connect", {"hang": True}),
    ("10 MB reply", {"content": "It took place on August 9, 2024 [1]. " * 270_000}),
    ("400 context length", {"status": 400, "message": "This model's maximum context length is 512 tokens."}),
    ("429 rate limit", {"status": 429}),
    ("200 then empty stream", {"empty_stream": True}),
    ("finish_reason length", {"content": "It took place on August 9, 2024 [1]. The lea", "finish": "length"}),
    ("no [DONE] (stream only)", {"content": "It took place on August 9, 2024 [1]. It was [1", "no_done": True}),
]
QUESTION = "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?"


def main(argv: list[str] | None = None) -> int:
    from rag.engine import Engine
    from rag.helptext import TOOL_EXIT, make_parser
    from rag.llm_answer import LLMAnswerer
    from rag.startup import startup

    p = make_parser("python -m evals.llm_faults", __doc__.split("\n\n")[0].replace("\n", " ") + " RAG_LLM_BASE_URL, "
                    "RAG_LLM_API_KEY and RAG_LLM_TIMEOUT are set for the run; the rest are read as usual.",
                    TOOL_EXIT, "documents", "answering", "logging")
    p.add_argument("--timeout", type=float, default=2.0, help="RAG_LLM_TIMEOUT for the run (seconds)")
    args = p.parse_args(argv)
    settings = startup()  # .env and paths as `rag` reads them; a bad value is one line, exit 2
    if settings is None:
        return 2
    from evals.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    settings = settings.with_(llm_base_url=fake.base_url, llm_api_key="sk-measure", llm_timeout=args.timeout)
    engine = Engine(settings, llm=LLMAnswerer(settings))
    engine.warm_up()
    print(f"RAG_LLM_TIMEOUT={args.timeout:g} s, RAG_LLM_RETRIES={settings.llm_retries}, "
          f"RAG_LLM_MAX_CHARS={settings.llm_max_chars}; must end within {args.timeout + 1:g} s\n")
    print(f"{'server':26} {'mode':6} {'seconds':>7} {'requests':>8}  {'answered by':11} note")
    try:
        for name, step in CASES:
            for stream in (False, True):
                fake.script = [dict(step) for _ in range(settings.llm_retries + 1)]
                fake.requests.clear()
                t = time.monotonic()
                if stream:
                    *_, answer = engine.ask_stream(QUESTION)
                else:
                    answer = engine.ask(QUESTION)
                seconds = time.monotonic() - t
                note = next((str(n) for n in answer.notes if "LLM" in str(n)), "")
                print(f"{name:26} {'stream' if stream else 'whole':6} {seconds:7.2f} {len(fake.requests):>8}  "
                      f"{answer.backend:11} {note[:110]}")
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
