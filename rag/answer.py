"""The default answerer: extractive, grounded, and willing to say "not in the documents".

It never writes a word the documents do not contain. It ranks the sentences of the retrieved
chunks by meaning (sentence vectors computed at ingest, so no model runs per sentence at query
time) and by how much of the question's rare vocabulary they hold, then answers with up to three
of them, each followed by its citation marker. For "when"/"how many" questions it leads with the
date or number found in the best sentence.

Confidence combines the best sentence's cosine with the question's IDF-weighted term coverage;
below RAG_MIN_CONFIDENCE it abstains. The threshold was calibrated on the dev split of
evals/seeds_qa.jsonl, not on single examples.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.lexical import content_words, fold
from rag.index import Index
from rag.records import Citation, Hit

ABSTAIN_TEXT = "I couldn't find this in the documents."
QUESTION_WORDS = {
    "what", "when", "where", "who", "which", "why", "how", "whom", "whose", "wann", "wer", "wo",
    "welche", "welcher", "welches", "wie", "warum", "was", "did", "does", "do", "is", "are", "was",
    "were", "say", "said", "says", "according", "article", "document", "mentioned", "mention",
}
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
_MONAT = r"(?:Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember)"
_DATE = re.compile(
    rf"\b{_MONTH}\s+\d{{1,2}}(?:,\s*\d{{4}})?|\b\d{{1,2}}\.?\s+{_MONTH}(?:\s+\d{{4}})?|\b\d{{1,2}}\.\s+{_MONAT}(?:\s+\d{{4}})?"
    rf"|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b(?:in|im|since|seit)\s+(?:19|20)\d{{2}}\b"
)
_NUMBER = re.compile(r"[$€£]?\b\d[\d,.]*\b(?!\.?\d|th\b|st\b|nd\b|rd\b|-)(?:\s+(?:million|billion|thousand|percent|%))?")
_WHEN = re.compile(r"^\s*(when|wann|what date|on what date|what day|in what year|in which year|what year)\b", re.I)
_HOW_MANY = re.compile(r"^\s*(how many|how much|wie viele|wie viel)\b", re.I)


@dataclass(frozen=True)
class Evidence:
    hit_rank: int
    hit: Hit
    sentence: str
    dense: float
    coverage: float
    score: float


@dataclass(frozen=True)
class Extracted:
    text: str
    abstained: bool
    citations: list[Citation]
    confidence: float


def _matches(word: str, vocab: set[str]) -> bool:
    """Exact, or the same name in another spelling (shared prefix or character 4-grams)."""
    if word in vocab:
        return True
    if len(word) < 4:
        return False
    grams = {word[i:i + 4] for i in range(len(word) - 3)}
    for v in vocab:
        if len(v) < 4 or abs(len(v) - len(word)) > 4:
            continue
        common = len(_common_prefix(word, v))
        if common >= 5 or (common >= 4 and common >= 0.6 * min(len(word), len(v))):
            return True
        other = {v[i:i + 4] for i in range(len(v) - 3)}
        if 2 * len(grams & other) / (len(grams) + len(other)) >= 0.5:
            return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


class ExtractiveAnswerer:
    def __init__(self, index: Index, min_confidence: float, max_sentences: int = 3):
        self.index = index
        self.min_confidence = min_confidence
        self.max_sentences = max_sentences
        self._df = index.document_frequencies("bm25")

    @property
    def _n_chunks(self) -> int:
        return max(self.index.num_chunks, 1)

    def _idf(self, word: str) -> float:
        from rag.lexical import word_tokens

        stems = word_tokens(word)
        df = self._df.get(stems[0], 0) if stems else 0
        return math.log(1 + (self._n_chunks - df + 0.5) / (df + 0.5))

    def key_terms(self, question: str) -> list[tuple[str, float]]:
        words = [w for w in dict.fromkeys(content_words(question)) if w not in QUESTION_WORDS]
        return [(w, self._idf(w)) for w in words]

    @staticmethod
    def coverage(terms: list[tuple[str, float]], text: str) -> float:
        if not terms:
            return 0.0
        vocab = set(re.findall(r"\w+", fold(text)))
        total = sum(w for _, w in terms)
        return sum(w for t, w in terms if _matches(t, vocab)) / total

    def evidence(self, question: str, qvec: np.ndarray, hits: list[Hit], terms) -> list[Evidence]:
        wants = _WHEN if _WHEN.match(question) else _HOW_MANY if _HOW_MANY.match(question) else None
        out: list[Evidence] = []
        seen: set[str] = set()
        for rank, hit in enumerate(hits):
            texts = hit.chunk.sentence_texts()
            sv = hit.sentence_vectors
            if sv is not None and len(texts):
                dens = np.asarray(sv[:len(texts)]) @ qvec
            else:
                dens = np.full(len(texts), hit.dense)
            for sent, d in zip(texts, dens.tolist()):
                key = " ".join(sent.split())
                if key in seen or len(key) < 12:
                    continue
                seen.add(key)
                cov = self.coverage(terms, sent)
                score = d + 0.5 * cov - 0.02 * rank
                if wants is not None and self.short_answer(question, sent):
                    score += 0.15  # a "when" question is answered by a sentence holding a date
                out.append(Evidence(rank, hit, sent, float(d), cov, score))
        out.sort(key=lambda e: -e.score)
        return out

    def confidence(self, terms, evidence: list[Evidence], hits: list[Hit]) -> float:
        if not evidence:
            return 0.0
        best = evidence[0]
        chunk_cov = self.coverage(terms, hits[0].chunk.text) if hits else 0.0
        raw = 0.45 * max(best.dense, 0.0) + 0.35 * best.coverage + 0.2 * chunk_cov
        return float(min(max(raw, 0.0), 1.0))

    def answer(self, question: str, qvec: np.ndarray, hits: list[Hit]) -> Extracted:
        terms = self.key_terms(question)
        evidence = self.evidence(question, qvec, hits, terms)
        conf = self.confidence(terms, evidence, hits)
        if not evidence or conf < self.min_confidence:
            return Extracted(ABSTAIN_TEXT, True, [], conf)
        best = evidence[0]
        chosen = [best] + [
            e for e in evidence[1:self.max_sentences * 3]
            if e.score >= 0.85 * best.score and e.coverage >= 0.5 * best.coverage
        ][: self.max_sentences - 1]
        numbers: dict[str, int] = {}
        citations: list[Citation] = []
        snippets: dict[str, list[str]] = {}
        lines = []
        for e in chosen:
            src = e.hit.chunk.source
            if src not in numbers:
                numbers[src] = len(numbers) + 1
                snippets[src] = []
                citations.append(None)  # placeholder, filled below in number order
            snippets[src].append(e.sentence.strip())
            lines.append(f"{e.sentence.strip()} [{numbers[src]}]")
        for src, n in numbers.items():
            hit = next(e.hit for e in chosen if e.hit.chunk.source == src)
            citations[n - 1] = Citation(
                n=n, source=src, title=hit.chunk.title, date=hit.chunk.date,
                snippet=" … ".join(snippets[src]), score=round(max(e.score for e in chosen if e.hit.chunk.source == src), 4),
            )
        short = self.short_answer(question, best.sentence)
        body = " ".join(lines)
        text = f"{short} [1]\n\n{body}" if short else body
        return Extracted(text, False, citations, conf)

    @staticmethod
    def short_answer(question: str, sentence: str) -> str | None:
        """The date or number a "when"/"how many" question asks for, if the sentence holds one."""
        if _WHEN.match(question):
            m = _DATE.search(sentence)
            if m:
                return m.group(0).strip().rstrip(",")
        if _HOW_MANY.match(question):
            m = _NUMBER.search(sentence)
            if m:
                return m.group(0).strip().rstrip(",.")
        return None
