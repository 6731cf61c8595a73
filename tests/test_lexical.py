import numpy as np

from rag.lexical import LexicalIndex, ngram_tokens, word_tokens

TEXTS = [
    "Präsident Tokajew betonte die Rolle der Neutralität Turkmenistans in Aschgabat.",
    "President Tokayev spoke about Turkmenistan's neutrality in Ashgabat.",
    "The Korea-Central Asia Cooperation Forum secretariat launched in 2017.",
    "",
]


def test_loaded_index_scores_exactly_like_bm25s(tmp_path):
    for kind in ("bm25", "ngram"):
        built = LexicalIndex.build(kind, TEXTS)
        built.save(tmp_path)
        loaded = LexicalIndex.load(kind, tmp_path)
        for q in ("Tokayev neutrality", "neutrality neutrality forum", "secretariat 2017", "nothing matches zzz"):
            ids = built._model.get_tokens_ids(built.tokenize(q))
            expected = built._model.get_scores_from_ids(ids) if ids else np.zeros(len(TEXTS))
            assert np.allclose(loaded.scores(q), expected)


def test_ngrams_bridge_spellings_across_languages():
    shared = set(ngram_tokens("Tokayev neutrality Ashgabat")) & set(ngram_tokens("Tokajew Neutralität Aschgabat"))
    assert {"#tok", "toka", "neut", "tral", "gaba", "abat"} <= shared
    assert word_tokens("The meetings") == ["meet"]


def test_german_text_gets_german_stemming_and_stop_words():
    assert word_tokens("Die Punkte der Verteidigung", "de") == ["punkt", "verteid"]
    assert word_tokens("The war", "en") == ["war"]  # "war" is a German stop word, not an English one
    index = LexicalIndex.build("bm25", ["Die Verteidigung gab nur 308 Punkte ab.", "The defense gave up 308 points."],
                               ["de", "en"])
    scores = index.scores("Wie viele Punkte gab die Verteidigung ab?")
    assert scores[0] > 0 == scores[1]  # "punkte" and "verteidigung" meet the German text only
