"""One follow-up rule for every backend (pure).

A question joins the conversation only when it leans on it ("and who chaired it?"): it refers
back with a pronoun or "and ...", or is too short to stand alone. A self-contained question never
inherits the last topic. A follow-up is made standalone by the LLM when there is one; without
one (or when its rewrite is not sane) the previous question joins the retrieval query instead.

A rewrite is sane when its first line is not empty, not far longer than the question and the
question before it (at most twice both, plus 40 characters), and shares content words with the
question or the recent conversation. Anything else is discarded and
the user's own words are used.
"""

from __future__ import annotations

import re

from rag.lexical import content_words

_REFERRING = {
    "he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "this", "that", "these",
    "those", "there", "then", "er", "sie", "es", "ihn", "ihm", "ihr", "dort", "dann", "dies", "das",
}
_LEADS = ("and", "und", "also", "what about", "how about", "und was", "and what")
_PREFIX = re.compile(r"^\s*(?:standalone question|rewritten question|question|frage)\s*:\s*", re.I)


def is_follow_up(question: str) -> bool:
    """Does the question refer back ('he', 'it', 'there', 'and …') or is it too short to stand alone?"""
    words = re.findall(r"\w+", question.casefold())
    if not words:
        return False
    text = " ".join(words)
    return text.startswith(_LEADS) or bool(_REFERRING & set(words)) or len(words) <= 3


def joined_query(question: str, history: list[tuple[str, str]]) -> str:
    """Without a rewrite: the question plus the previous question, for retrieval only."""
    return f"{question} {history[-1][0]}"


def sane_rewrite(rewrite: str, question: str, history: list[tuple[str, str]]) -> str | None:
    """The rewrite's first line if it is a usable standalone question, else None."""
    lines = [ln.strip().strip('"“”«»').strip() for ln in rewrite.splitlines() if ln.strip()]
    if not lines:
        return None
    line = _PREFIX.sub("", lines[0]).strip()
    if not line:
        return None
    if len(line) > 2 * (len(question) + len(history[-1][0])) + 40 if history else 2 * len(question) + 40:
        return None  # a standalone question is about the question plus what it refers to
    context = question + " " + " ".join(f"{q} {a}" for q, a in history[-3:])
    if not set(content_words(line)) & set(content_words(context)):
        return None
    return line
