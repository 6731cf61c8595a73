import numpy as np

from rag.lexical import TOKENIZERS, LexicalIndex, ngram_tokens, word_tokens

TEXTS = [
    "Präsident Tokajew betonte die Rolle der Neutralität Turkmenistans in Aschgabat.",
    "President Tokayev spoke about Turkmenistan's neutrality in Ashgabat.",
    "The Korea-Central Asia Cooperation Forum secretariat launched in 2017.",
    "",
]


def test_loaded_index_scores_exactly_like_bm25s(tmp_path):
    import bm25s

    for kind in ("bm25", "ngram"):
        built = LexicalIndex.build(kind, TEXTS)
        built.save(tmp_path)
        loaded = LexicalIndex.load(kind, tmp_path)
        ref = bm25s.BM25(k1=1.2, b=0.75)  # the reference implementation
        ref.index([TOKENIZERS[kind](t) or ["\x00empty"] for t in TEXTS], show_progress=False)
        for q in ("Tokayev neutrality", "neutrality neutrality forum", "secretariat 2017", "nothing matches zzz"):
            ids = ref.get_tokens_ids(built.tokenize(q))
            expected = ref.get_scores_from_ids(ids) if ids else np.zeros(len(TEXTS))
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


def test_streamed_bm25_build_scores_like_bm25s(built):
    """The numpy build must give bm25s's scores (the reference), on the seeds and on edge cases."""
    import bm25s

    from rag.store import load_snapshot

    texts = [c.text for c in load_snapshot(built.index_dir).chunks] + ["", "the of and", "Tokayev " * 40]
    queries = ["When did the VI Consultative Meeting take place?", "Tokajew Neutralität Turkmenistan",
               "parliamentary meeting South Korea", "the", "zzzz unknown words"]
    for kind in ("bm25", "ngram"):
        ours = LexicalIndex.build(kind, texts)
        ref = bm25s.BM25(k1=1.2, b=0.75)
        ref.index([TOKENIZERS[kind](t) or ["\x00empty"] for t in texts], show_progress=False)
        assert ours.num_docs == len(texts) and len(ours.vocab) == len(ref.vocab_dict) - ("" in ref.vocab_dict)
        for q in queries:
            tokens = [t for t in dict.fromkeys(TOKENIZERS[kind](q)) if t in ref.vocab_dict]
            expected = ref.get_scores(tokens) if tokens else np.zeros(len(texts))
            np.testing.assert_allclose(ours.scores(q), expected, rtol=1e-5, atol=1e-6)


def test_saved_index_loads_back_identically(tmp_path):
    texts = ["Astana hosted the summit.", "", "Der Gipfel fand in Astana statt.", "summit summit summit"]
    index = LexicalIndex.build("bm25", texts)
    index.save(tmp_path)
    again = LexicalIndex.load("bm25", tmp_path)
    assert again.vocab == index.vocab and again.num_docs == 4
    np.testing.assert_array_equal(again.scores("Astana summit"), index.scores("Astana summit"))
