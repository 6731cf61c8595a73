"""A synthetic corpus for the scale benchmark: embedding-like vectors and Zipfian text, reproducible.

Vectors: sentence embeddings are not uniform on the sphere: they crowd around topics, share a
common direction, and their variance falls off across directions. So each chunk is drawn around
one of 2,000 topic centres in 384 dimensions whose per-dimension variance decays as a power law
(i^-0.7), plus noise with the same spectrum and a shared direction, then normalized: unrelated
chunks have cosine about 0.1 and a chunk's nearest neighbour about 0.6, as all-MiniLM-L6-v2 has on
real text. A question vector is a chunk vector plus isotropic noise (cosine about 0.6 to that
chunk); its true neighbours come from exact search.

Text: words from a fixed 60,000-word vocabulary of pronounceable nonsense, drawn with Zipf-
Mandelbrot frequencies (p(rank) ∝ 1/(rank + 2.7), like English) except the 100 most frequent
ranks, which stand for the stop words the tokenizer removes from real text; 60 to 140 words per
chunk, and the chunk's topic mixes in its own 30 words so that lexical search has something to find.
A question is 6 words of one chunk, so it has a known answer chunk.
Everything depends only on the seed: the same numbers come out on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIM = 384
VOCAB = 60_000
TOPIC_WORDS = 30
STOP_RANKS = 100  # Zipf ranks standing for stop words: never drawn
BLOCK = 65536  # rows generated together from one seed, so any row can be regenerated alone
NOISE = 0.75  # chunk scatter around its topic centre, relative to the spectrum
COMMON = 1.7  # length of the shared direction (sets the mean cosine of unrelated chunks)
QUESTION_NOISE = 0.07  # per-dimension noise added to a chunk vector to make its question vector (cosine ~0.6)


@dataclass(frozen=True)
class Corpus:
    n: int
    seed: int = 7
    topics: int = 2000

    def _spectrum(self) -> np.ndarray:
        return (np.arange(1, DIM + 1, dtype=np.float64) ** -0.7).astype(np.float32)

    def _centres(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((self.topics, DIM), dtype=np.float32) * np.sqrt(self._spectrum())

    def _common(self) -> np.ndarray:
        """A direction every vector shares a little of, as real embeddings do (anisotropy)."""
        rng = np.random.default_rng(self.seed + 3)
        g = rng.standard_normal(DIM).astype(np.float32)
        return g / np.linalg.norm(g) * COMMON

    def topic_of(self, rows: np.ndarray) -> np.ndarray:
        return (rows * 2654435761 % 2**32 % self.topics).astype(np.int64)

    def vectors(self, start: int, stop: int) -> np.ndarray:
        """Unit vectors of chunks start..stop; row i is the same whichever range asks for it."""
        return np.concatenate([self._vector_block(b)[max(start - b * BLOCK, 0):stop - b * BLOCK]
                               for b in range(start // BLOCK, (stop - 1) // BLOCK + 1)]) if stop > start \
            else np.zeros((0, DIM), np.float32)

    def _vector_block(self, b: int) -> np.ndarray:
        a, z = b * BLOCK, min(self.n, (b + 1) * BLOCK)
        rng = np.random.default_rng([self.seed, b])
        noise = rng.standard_normal((z - a, DIM), dtype=np.float32) * (np.sqrt(self._spectrum()) * NOISE)
        v = self._centres()[self.topic_of(np.arange(a, z))] + noise + self._common()
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def vocabulary(self) -> list[str]:
        rng = np.random.default_rng(self.seed + 1)
        consonants, vowels = list("bcdfghjklmnprstvwz"), list("aeiou")
        words: set[str] = set()
        while len(words) < VOCAB:
            n = int(rng.integers(2, 5))
            w = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n))
            if rng.random() < 0.4:
                w += rng.choice(consonants)
            words.add(w)
        return sorted(words, key=lambda w: (hash_word(w), w))

    def texts(self, start: int, stop: int, vocab: list[str]) -> list[str]:
        """Texts of chunks start..stop; row i is the same whichever range asks for it."""
        out: list[str] = []
        for b in range(start // BLOCK, (stop - 1) // BLOCK + 1) if stop > start else ():
            block = self._text_block(b, vocab)
            out.extend(block[max(start - b * BLOCK, 0):stop - b * BLOCK])
        return out

    def _text_block(self, b: int, vocab: list[str]) -> list[str]:
        a, z = b * BLOCK, min(self.n, (b + 1) * BLOCK)
        ranks = np.arange(1, VOCAB + 1, dtype=np.float64)
        # The most frequent ranks are function words, which the stop-word list removes from real
        # text before BM25 sees it; they are left out here rather than generated and ignored.
        ranks[:STOP_RANKS] = np.inf
        cdf = np.cumsum(1.0 / (ranks + 2.7))
        cdf /= cdf[-1]
        rng = np.random.default_rng([self.seed, b, 1])
        lengths = rng.integers(60, 141, size=z - a)
        total = int(lengths.sum())
        ids = np.searchsorted(cdf, rng.random(total))
        topics = np.repeat(self.topic_of(np.arange(a, z)), lengths)
        mix = rng.random(total) < 0.15  # 15 % of a chunk's words are its topic's own
        ids[mix] = (1000 + topics[mix] * TOPIC_WORDS + rng.integers(0, TOPIC_WORDS, size=int(mix.sum()))) % VOCAB
        words = np.array(vocab, dtype=object)[ids]
        ends = np.cumsum(lengths)
        return [" ".join(words[e - n:e]) for e, n in zip(ends.tolist(), lengths.tolist())]

    def questions(self, count: int, vocab: list[str]) -> list[tuple[int, str, np.ndarray]]:
        """(answer row, question text, question vector) for `count` chunks spread over the corpus."""
        rng = np.random.default_rng(self.seed + 2)
        rows = np.sort(rng.choice(self.n, size=count, replace=False))
        out = []
        blocks: dict[int, list[str]] = {}
        for r in rows.tolist():
            if r // BLOCK not in blocks:
                blocks = {r // BLOCK: self._text_block(r // BLOCK, vocab)}
            words = blocks[r // BLOCK][r % BLOCK].split()
            pick = rng.choice(len(words), size=min(6, len(words)), replace=False)
            v = self.vectors(r, r + 1)[0] + rng.standard_normal(DIM).astype(np.float32) * QUESTION_NOISE
            out.append((r, " ".join(words[i] for i in sorted(pick)), v / np.linalg.norm(v)))
        return out


def hash_word(w: str) -> int:
    import zlib

    return zlib.crc32(w.encode())
