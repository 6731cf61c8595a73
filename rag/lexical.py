"""Two BM25 channels over the chunks (bm25s): stemmed words, and character n-grams.

Words catch exact names and rare terms that embeddings blur. Character 4-grams of accent-folded
words survive spelling across languages (Tokayev/Tokajew, Ashgabat/Aschgabat,
neutrality/Neutralität share n-grams), which is how English questions reach the German document
with an English-only embedding model.

>>> ngram_tokens("Tokajew")[:3]
['#tok', 'toka', 'okaj']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rag.languages import STOPWORDS, STOPWORDS_DE, STOPWORDS_EN, fold, guess_language, stem_words

_WORD = re.compile(r"\w+", re.UNICODE)


def _bm25s():
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on itself at import
    return bm25s


def stopwords(language: str) -> frozenset[str]:
    return {"en": STOPWORDS_EN, "de": STOPWORDS_DE}.get(language, STOPWORDS)


def content_words(text: str, language: str | None = None) -> list[str]:
    """Folded words minus the stop words of `language` (guessed when None; both lists when unknown).

    Stop words are per language because they collide: "war", "die" and "man" are content in English.
    """
    stops = stopwords(language or guess_language(text))
    return [w for w in _WORD.findall(fold(text)) if w not in stops and (len(w) > 1 or w.isdigit())]


def word_tokens(text: str, language: str = "en") -> list[str]:
    """Stemmed content words, with the stemmer and stop words of the text's language."""
    return stem_words(content_words(text, language), language)


def ngram_tokens(text: str, language: str | None = None, n: int = 4) -> list[str]:
    out: list[str] = []
    for w in content_words(text, language):
        if len(w) < 3 or w.isdigit():
            continue
        padded = f"#{w}#"
        out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return out


TOKENIZERS: dict[str, Callable[[str, str], list[str]]] = {"bm25": word_tokens, "ngram": ngram_tokens}


def query_tokens(kind: str, query: str, languages: tuple[str, ...]) -> list[str]:
    """The query's tokens for an index over `languages`: stemmed once per language, then merged.

    A question's words are stemmed the way each document language was, so "Punkte" meets German
    "punkt" and names keep matching across languages ("panthers" → "panther" and "panth"). Each
    token counts once: repeating a word in a question does not make it matter more.
    """
    qlang = guess_language(query)
    words = content_words(query, qlang)
    if kind == "ngram":
        return list(dict.fromkeys(ngram_tokens(" ".join(words), "und")))
    out: list[str] = []
    for lang in languages:
        out.extend(stem_words(words, lang))
    return list(dict.fromkeys(out))


class LexicalIndex:
    """BM25 over chunk texts with a fixed tokenizer; bm25s builds and saves it.

    Queries read bm25s's saved sparse matrix directly with numpy (the same sum bm25s computes in
    `get_scores`), because importing bm25s pulls in scipy and costs a third of the cold-start budget.
    """

    def __init__(self, kind: str, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 vocab: dict[str, int], num_docs: int, languages: tuple[str, ...] = ("en",)) -> None:
        self.kind = kind
        self.languages = languages
        self.data, self.indices, self.indptr = data, indices, indptr
        self.vocab = vocab
        self.num_docs = num_docs
        self._model = None

    @classmethod
    def build(cls, kind: str, texts: list[str], languages: list[str] | None = None) -> LexicalIndex:
        """Index `texts`, each tokenized with the stemmer and stop words of its language."""
        bm25s = _bm25s()
        tokenize = TOKENIZERS[kind]
        langs = [lang if lang in ("en", "de") else "en" for lang in (languages or ["en"] * len(texts))]
        # A placeholder token keeps empty chunks indexable without matching anything real.
        corpus = [tokenize(t, lang) or ["\x00empty"] for t, lang in zip(texts, langs)]
        model = bm25s.BM25(k1=1.2, b=0.75)
        model.index(corpus, show_progress=False)
        sc = model.scores
        index = cls(kind, np.asarray(sc["data"]), np.asarray(sc["indices"]), np.asarray(sc["indptr"]),
                    dict(model.vocab_dict), int(sc["num_docs"]), tuple(sorted(set(langs))) or ("en",))
        index._model = model
        return index

    def tokenize(self, query: str) -> list[str]:
        return query_tokens(self.kind, query, self.languages)

    def scores(self, query: str, extra: dict[str, float] | None = None) -> np.ndarray:
        """BM25 of every chunk for `query`; `extra` adds weighted tokens (e.g. translations)."""
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for tok, weight in self.weighted_tokens(query, extra):
            t = self.vocab.get(tok)
            if t is not None and t + 1 < len(self.indptr):
                a, b = self.indptr[t], self.indptr[t + 1]
                np.add.at(scores, self.indices[a:b], weight * self.data[a:b])
        return scores

    def weighted_tokens(self, query: str, extra: dict[str, float] | None) -> list[tuple[str, float]]:
        toks = {t: 1.0 for t in self.tokenize(query)}
        for t, w in (extra or {}).items():
            toks[t] = max(toks.get(t, 0.0), w)
        return list(toks.items())

    def document_frequencies(self) -> dict[str, int]:
        """Chunks containing each token (the column lengths of the sparse score matrix)."""
        if not hasattr(self, "_df"):
            counts = np.diff(self.indptr)
            self._df = {tok: int(counts[i]) for tok, i in self.vocab.items() if i < len(counts)}
        return self._df

    def save(self, folder: Path) -> None:
        self._model.save(str(folder / self.kind), show_progress=False)
        (folder / self.kind / "languages.json").write_text(json.dumps(list(self.languages)), encoding="utf-8")

    @classmethod
    def load(cls, kind: str, folder: Path) -> LexicalIndex:
        d = folder / kind
        params = json.loads((d / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((d / "vocab.index.json").read_text(encoding="utf-8"))
        langs = d / "languages.json"
        languages = tuple(json.loads(langs.read_text(encoding="utf-8"))) if langs.exists() else ("en",)
        return cls(kind, np.load(d / "data.csc.index.npy"), np.load(d / "indices.csc.index.npy"),
                   np.load(d / "indptr.csc.index.npy"), vocab, int(params["num_docs"]), languages)
