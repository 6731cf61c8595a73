"""Plain-text rendering of answers for terminals (pure: returns strings, prints nothing)."""

from __future__ import annotations

import textwrap

from rag.records import Answer, Citation


def shorten(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rsplit(" ", 1)[0] + " …"


def render_citation(c: Citation, full: bool = False) -> str:
    head = f"[{c.n}] {c.source} — {c.title}" + (f" ({c.date})" if c.date else "")
    snippet = " ".join(c.snippet.split()) if full else shorten(c.snippet)
    body = textwrap.fill(snippet, width=96, initial_indent="    ", subsequent_indent="    ")
    return f"{head}\n{body}"


def render_sources(answer: Answer, full: bool = False) -> str:
    if not answer.citations:
        return "(no sources)"
    return "\n".join(render_citation(c, full) for c in answer.citations)


def render_footer(answer: Answer) -> str:
    lines = []
    if answer.citations:
        lines += ["", "Sources:", render_sources(answer)]
    for note in answer.notes:
        lines.append(f"note: {note}")
    total = answer.timings_ms.get("total")
    lines.append(f"({answer.backend}" + (f", {total:.0f} ms)" if total is not None else ")"))
    return "\n".join(lines)
