"""One follow-up rule for every backend (pure).

A question joins the conversation only when it leans on it ("and who chaired it?"): it starts
with "and …" or "what about …", names someone with a personal pronoun ("he", "it", "ihn"),
ends on a demonstrative ("when was that?", "was bedeutet das?"), or is one or two words
("Why?"). A demonstrative before a noun ("that budget", "das Abkommen", "is there a visa …") is
a determiner, not a reference, so most self-contained questions stay as asked; the rule errs
towards not joining, since joining a self-contained question pulls the last topic into its
retrieval. A follow-up is made standalone by the LLM when there is one; without one (or when its
rewrite is not sane) the previous question joins the retrieval query instead.

A rewrite is sane when its first line is not empty, not far longer than the question and the
question before it (at most twice both, plus 40 characters), and shares content words with the
question or the recent conversation. Anything else is discarded and the user's own words are used.
"""

from __future__ import annotations

import re

from rag.lexical import content_words

# Personal pronouns refer back wherever they stand. German "es" and "ihr" are left out ("Gibt es
# …", "ihr" as "you"), and "sie" counts only in lower case after the first word: "Sie" is "you".
_PRONOUNS = {
    "he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "theirs", "er", "ihn", "ihm", "dort",
}
# Demonstratives refer back only when they stand for a noun: at the end of the question, or before
# a verb after a question word or verb ("what does that mean", not "the treaty that was signed"),
# or in German before a lower-case word (German nouns are capitalised).
_DEMONSTRATIVES_EN = {"this", "that", "these", "those", "there", "then"}
_DEMONSTRATIVES_DE = {"das", "dies", "dann", "diese", "dieses"}
_VERBS_AFTER = {
    "is", "was", "are", "were", "be", "been", "mean", "means", "meant", "do", "does", "did", "happen", "happened",
    "say", "says", "said", "cost", "costs", "take", "took", "have", "has", "had", "one", "ones", "true", "right",
}
_QUESTION_WORDS = {"what", "when", "where", "why", "how", "who", "which", "and", "but", "so"}
_LEADS = re.compile(r"(?:and|und|also|what about|how about|was ist mit)\b")
_PREFIX = re.compile(r"^\s*(?:standalone question|rewritten question|question|frage)\s*:\s*", re.I)


def is_follow_up(question: str) -> bool:
    """Does the question lean on the one before ('and …', 'he', 'when was that?', 'Why?')?"""
    words = re.findall(r"\w+", question)
    if not words:
        return False
    folded = [w.casefold() for w in words]
    if _LEADS.match(" ".join(folded)) or len(words) <= 2 or _PRONOUNS & set(folded):
        return True
    for i, word in enumerate(folded):
        after = words[i + 1] if i + 1 < len(words) else None
        before = folded[i - 1] if i else None
        if word in _DEMONSTRATIVES_EN and (after is None or after.casefold() in _VERBS_AFTER
                                           and (before is None or before in _VERBS_AFTER | _QUESTION_WORDS)):
            return True
        if word in _DEMONSTRATIVES_DE and i > 0 and (after is None or after[0].islower()):
            return True
        if words[i] == "sie" and i > 0:
            return True
    return False


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
    before = history[-1][0] if history else ""
    if len(line) > 2 * (len(question) + len(before)) + 40:
        return None  # a standalone question is about the question plus what it refers to
    context = question + " " + " ".join(f"{q} {a}" for q, a in history[-3:])
    if not set(content_words(line)) & set(content_words(context)):
        return None
    return line
