"""Pure metric functions; every retrieval metric is document-level over distinct sources in rank order.

>>> ndcg_at_k(["a", "b"], {"b"}, 10)  # one relevant document at rank 2
0.6309
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

_MARKER = re.compile(r"\[(\d+)\]")
_DASHES = dict.fromkeys(map(ord, "‐‑‒–—―−"), "-")
_QUOTES = {**dict.fromkeys(map(ord, "“”„‟«»"), '"'), **dict.fromkeys(map(ord, "‘’‚‛‹›"), "'")}


def normalize(text: str) -> str:
    """NFKC, casefold, one kind of dash and quote, collapsed whitespace."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_DASHES).translate(_QUOTES)
    return " ".join(text.split())


def strip_markers(text: str) -> str:
    return _MARKER.sub("", text)


def answer_contains(answer: str, golds: list[str]) -> float:
    a = normalize(strip_markers(answer))
    return float(any(normalize(g) in a for g in golds))


def first_sentence(answer: str) -> str:
    """The answer's lead: its first line or first sentence, whichever ends sooner (markers removed).

    A short answer ("308 [1]") on its own line is the lead; so is the first quoted sentence when
    there is no short answer. This is what a reader sees before deciding to read on.
    """
    from rag.sentences import split_sentence_texts

    text = strip_markers(answer).strip()
    if not text:
        return ""
    first_line = text.split("\n", 1)[0]
    sentences = split_sentence_texts(first_line)
    return sentences[0] if sentences else first_line


def first_sentence_contains(answer: str, golds: list[str]) -> float:
    return answer_contains(first_sentence(answer), golds)


def answer_words(answer: str) -> int:
    """Length of the answer text in words, citation markers not counted."""
    return len(re.findall(r"\w+", strip_markers(answer)))


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", normalize(strip_markers(text)))


def token_f1(answer: str, golds: list[str]) -> float:
    pred = _tokens(answer)
    best = 0.0
    for g in golds:
        gold = _tokens(g)
        common = sum((Counter(pred) & Counter(gold)).values())
        if not pred or not gold or not common:
            continue
        p, r = common / len(pred), common / len(gold)
        best = max(best, 2 * p * r / (p + r))
    return best


def hit_at_k(ranked: list[str], gold: set[str], k: int) -> float:
    return float(any(d in gold for d in ranked[:k]))


def mrr(ranked: list[str], gold: set[str]) -> float:
    for i, d in enumerate(ranked, start=1):
        if d in gold:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: list[str], gold: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return round(dcg / ideal, 4) if ideal else 0.0


def recall_at_k(ranked: list[str], gold: set[str], k: int) -> float:
    return len(set(ranked[:k]) & gold) / len(gold) if gold else 0.0


def citation_precision(cited: list[str], gold: set[str]) -> float | None:
    return sum(c in gold for c in cited) / len(cited) if cited else None


def citation_validity(answer: str, listed: set[int]) -> float:
    return float(all(int(n) in listed for n in _MARKER.findall(answer)))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return float(values[mid]) if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None
