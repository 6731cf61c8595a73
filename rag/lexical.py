"""Two BM25 channels over the chunks (bm25s): stemmed words, and character n-grams.

Words catch exact names and rare terms that embeddings blur. Character 4-grams of accent-folded
words survive spelling across languages (Tokayev/Tokajew, Ashgabat/Aschgabat,
neutrality/Neutralität share n-grams), which is how English questions reach the German document
with an English-only embedding model.

>>> ngram_tokens("Tokajew")[:3]
['#tok', 'toka', 'okaj']
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np

STOPWORDS = set(
    """a an and are as at be been but by did do does for from had has have he her his how i in into is it
    its of on or our she so that the their them there these they this those to was we were what when
    where which who whom whose why will with would you your about after also any can could many much
    more most other over than then up out under again did done tell me please give know take took place
    der die das und ist im in den des dem ein eine einer eines zu zur zum mit von für auf bei als wie
    wer was wann wo warum welche welcher welches sich sie er es nicht auch aus hat haben wurde wurden
    sein seine ihre ihr am an oder über nach vor durch""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Casefold and strip accents: 'Neutralität' → 'neutralitat'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _bm25s():
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on itself at import
    return bm25s


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(fold(text)) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def word_tokens(text: str) -> list[str]:
    return _stemmer().stemWords(content_words(text))


def ngram_tokens(text: str, n: int = 4) -> list[str]:
    out: list[str] = []
    for w in content_words(text):
        if len(w) < 3 or w.isdigit():
            continue
        padded = f"#{w}#"
        out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return out


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"bm25": word_tokens, "ngram": ngram_tokens}


class LexicalIndex:
    """BM25 over chunk texts with a fixed tokenizer; bm25s builds and saves it.

    Queries read bm25s's saved sparse matrix directly with numpy (the same sum bm25s computes in
    `get_scores`), because importing bm25s pulls in scipy and costs a third of the cold-start budget.
    """

    def __init__(self, kind: str, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 vocab: dict[str, int], num_docs: int) -> None:
        self.kind = kind
        self.tokenize = TOKENIZERS[kind]
        self.data, self.indices, self.indptr = data, indices, indptr
        self.vocab = vocab
        self.num_docs = num_docs
        self._model = None

    @classmethod
    def build(cls, kind: str, texts: list[str]) -> LexicalIndex:
        bm25s = _bm25s()
        tokenize = TOKENIZERS[kind]
        # A placeholder token keeps empty chunks indexable without matching anything real. Tokens
        # are interned: each distinct token is one string, not one per occurrence (a million chunks
        # hold ~90 million occurrences, ~5 GB as separate strings).
        corpus = [[sys.intern(w) for w in tokenize(t)] or ["\x00empty"] for t in texts]
        model = bm25s.BM25(k1=1.2, b=0.75)
        model.index(corpus, show_progress=False)
        sc = model.scores
        index = cls(kind, np.asarray(sc["data"]), np.asarray(sc["indices"]), np.asarray(sc["indptr"]),
                    dict(model.vocab_dict), int(sc["num_docs"]))
        index._model = model
        return index

    def scores(self, query: str) -> np.ndarray:
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for tok in self.tokenize(query):
            t = self.vocab.get(tok)
            if t is not None and t + 1 < len(self.indptr):
                a, b = self.indptr[t], self.indptr[t + 1]
                np.add.at(scores, self.indices[a:b], self.data[a:b])
        return scores

    def document_frequencies(self) -> dict[str, int]:
        """Chunks containing each token (the column lengths of the sparse score matrix)."""
        if not hasattr(self, "_df"):
            counts = np.diff(self.indptr)
            self._df = {tok: int(counts[i]) for tok, i in self.vocab.items() if i < len(counts)}
        return self._df

    def save(self, folder: Path) -> None:
        self._model.save(str(folder / self.kind), show_progress=False)

    @classmethod
    def load(cls, kind: str, folder: Path) -> LexicalIndex:
        import json

        d = folder / kind
        params = json.loads((d / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((d / "vocab.index.json").read_text(encoding="utf-8"))
        return cls(kind, np.load(d / "data.csc.index.npy"), np.load(d / "indices.csc.index.npy"),
                   np.load(d / "indptr.csc.index.npy"), vocab, int(params["num_docs"]))
