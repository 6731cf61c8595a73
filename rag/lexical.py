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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from rag.languages import STOPWORDS, STOPWORDS_DE, STOPWORDS_EN, fold, guess_language, stem_words, stemmer_language

_WORD = re.compile(r"\w+", re.UNICODE)


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
        return list(dict.fromkeys(ngram_tokens(" ".join(words), qlang)))
    out: list[str] = []
    for lang in languages:
        out.extend(stem_words(words, lang))
    return list(dict.fromkeys(out))


EMPTY_TOKEN = "\x00empty"
K1, B = 1.2, 0.75


def bm25_idf(n: int, df: np.ndarray) -> np.ndarray:
    """The "lucene" idf of tokens found in `df` of `n` chunks."""
    return np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)


def bm25_matrix(df: np.ndarray, lengths: np.ndarray, counted: Iterable[tuple[np.ndarray, np.ndarray, int]],
                idf: np.ndarray | None = None, avgdl: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BM25 ("lucene" idf, Robertson tf) of every (chunk, token) pair as a CSC matrix: data, indices, indptr.

    `df` is each token's document frequency and `lengths` each chunk's token count; `counted`
    yields, chunk by chunk, its distinct token ids and their counts (and length), and is read once
    while the matrix is filled, so nothing but the finished matrix is held. Column t (a token)
    lists the chunks holding it in ascending order, as bm25s stores it. `idf` and `avgdl` default
    to these chunks' own; a delta segment passes its base's (rag/segments.py).
    """
    n = len(lengths)
    idf = bm25_idf(n, df) if idf is None else idf
    avgdl = avgdl if avgdl is not None else (float(lengths.mean()) if n else 1.0)
    norm = K1 * ((1 - B) + B * lengths / (avgdl or 1.0))
    indptr = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    data = np.empty(int(indptr[-1]), dtype=np.float32)
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    cursor = indptr[:-1].copy()
    for doc, (distinct, counts, _) in enumerate(counted):
        tf = counts.astype(np.float32)
        slots = cursor[distinct]
        indices[slots] = doc
        data[slots] = idf[distinct] * tf / (norm[doc] + tf)
        cursor[distinct] += 1
    return data, indices, indptr


class LexicalIndex:
    """BM25 over chunk texts with a fixed tokenizer, in the file format of bm25s.

    Queries read bm25s's saved sparse matrix directly with numpy (the same sum bm25s computes in
    `get_scores`), because importing bm25s pulls in scipy and costs a third of the cold-start budget.
    """

    def __init__(self, kind: str, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 vocab: dict[str, int], num_docs: int, languages: tuple[str, ...] = ("en",),
                 avgdl: float | None = None) -> None:
        self.kind = kind
        self.avgdl = avgdl  # mean tokens per chunk (None in indexes saved before it was kept)
        self.languages = languages  # the stemmers the chunks were tokenized with
        self.data, self.indices, self.indptr = data, indices, indptr
        self.vocab = vocab
        self.num_docs = num_docs

    @classmethod
    def build(cls, kind: str, texts: Sequence[str], languages: Sequence[str] | None = None,
              delta_of_avgdl: float | None = None) -> LexicalIndex:
        """Index `texts` (tokenized twice, one at a time) without holding their tokens in memory.

        The scores are bm25s's ("lucene" BM25, k1=1.2, b=0.75; tests compare the two), computed
        here with numpy because bm25s keeps every token of the corpus as a Python object: for
        character 4-grams of a 50 MB file that alone was gigabytes. `delta_of_avgdl` (a base
        segment's mean chunk length) builds a delta segment instead: its matrix holds BM25's
        term-frequency part only (idf 1), and the idf of the live chunks is applied when a
        question is scored (rag/segments.py).
        """
        tokenize = TOKENIZERS[kind]
        vocab: dict[str, int] = {}
        # Each chunk is tokenized with its own language's stemmer and stop words.
        # Without languages every text gets the tokenizer's own default (as TOKENIZERS[kind](text)).
        langs = [stemmer_language(lang) for lang in languages] if languages else [None] * len(texts)

        def counted() -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
            for text, lang in zip(texts, langs):
                # A placeholder token keeps empty chunks indexable without matching anything real.
                tokens = (tokenize(text, lang) if lang else tokenize(text)) or [EMPTY_TOKEN]
                ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), np.int64, len(tokens))
                distinct, counts = np.unique(ids, return_counts=True)
                yield distinct, counts, len(tokens)

        # First pass: vocabulary, document frequencies and lengths; the second fills the matrix.
        df = np.zeros(1024, dtype=np.int64)
        lengths = np.zeros(len(texts), dtype=np.float32)
        for doc, (distinct, _, length) in enumerate(counted()):
            if len(vocab) > len(df):
                df = np.concatenate([df, np.zeros(max(len(vocab), 2 * len(df)) - len(df), dtype=np.int64)])
            df[distinct] += 1
            lengths[doc] = length
        df = df[:len(vocab)]
        idf = np.ones(len(df), dtype=np.float32) if delta_of_avgdl is not None else None
        data, indices, indptr = bm25_matrix(df, lengths, counted(), idf, delta_of_avgdl)
        own_avgdl = float(lengths.mean()) if len(texts) else None
        return cls(kind, data, indices, indptr, vocab, len(texts), tuple(sorted({x or "en" for x in langs})) or ("en",),
                   own_avgdl)

    def tokenize(self, query: str) -> list[str]:
        return query_tokens(self.kind, query, self.languages)

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
        """The files bm25s writes (and reads with `BM25.load`), so either can open the other's index."""
        d = folder / self.kind
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "data.csc.index.npy", self.data)
        np.save(d / "indices.csc.index.npy", self.indices)
        np.save(d / "indptr.csc.index.npy", self.indptr)
        (d / "vocab.index.json").write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        params = {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": self.num_docs, "backend": "numpy"}
        (d / "params.index.json").write_text(json.dumps(params, indent=4), encoding="utf-8")
        (d / "languages.json").write_text(json.dumps(list(self.languages)), encoding="utf-8")
        if self.avgdl is not None:
            (d / "corpus_stats.json").write_text(json.dumps({"avgdl": self.avgdl}), encoding="utf-8")

    @classmethod
    def load(cls, kind: str, folder: Path) -> LexicalIndex:
        d = folder / kind
        params = json.loads((d / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((d / "vocab.index.json").read_text(encoding="utf-8"))
        langs = d / "languages.json"
        languages = tuple(json.loads(langs.read_text(encoding="utf-8"))) if langs.exists() else ("en",)
        return cls(kind, np.load(d / "data.csc.index.npy"), np.load(d / "indices.csc.index.npy"),
                   np.load(d / "indptr.csc.index.npy"), vocab, int(params["num_docs"]), languages, _avgdl(d))


def saved_avgdl(folder: Path, kind: str) -> float | None:
    """The mean chunk length of a saved index (None if it was saved before this was kept)."""
    return _avgdl(folder / kind)


def _avgdl(d: Path) -> float | None:
    stats = d / "corpus_stats.json"
    return json.loads(stats.read_text(encoding="utf-8"))["avgdl"] if stats.exists() else None
