"""Citation markers: every shape normalised, renumbered by first appearance, streaming == final.

Property tests over random "marker soups" (hypothesis): text and markers of every supported
shape with numbers in and out of range, cut into random stream pieces.
"""

import re

from hypothesis import given, settings, strategies as st

from rag.citations import MarkerNormaliser, Renumberer
from rag.grounding import Verifier

SHAPES = ["[{n}]", "[ {n} ]", "[{n} ]", "[Source {n}]", "[source: {n}]", "[^{n}]", "【{n}】", "【{n}:0†source】",
          "［{n}］", "[{n}, {m}]", "[{n}-{m}]", "[Sources {n} and {m}]", "[{n}][{m}]", "[Source A]", "[source]",
          "[sic]", "["]
WORDS = ["alpha", "beta", "gamma", "delta", "2024", "river", "treaty", "signed", "Astana"]
SOURCES = ["alpha beta river 2024 treaty", "gamma delta signed Astana", "alpha gamma 2024", "river treaty signed"]


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


marker = st.builds(lambda shape, n, m: shape.format(n=n, m=m), st.sampled_from(SHAPES), st.integers(0, 7), st.integers(0, 7))
word = st.sampled_from(WORDS + [".", ". ", "\n\n", " ", ",", "I couldn't find this in the documents."])
soup = st.lists(st.one_of(marker, word, word), max_size=40).map(" ".join)
cuts = st.lists(st.integers(0, 2000), max_size=12)


@settings(max_examples=300, deadline=None)
@given(soup, cuts, st.integers(1, 4))
def test_normalised_markers_point_at_listed_sources_and_streaming_agrees(text, cut, n_sources):
    whole = MarkerNormaliser(n_sources)
    expected = whole.feed(text) + whole.finish()
    stream = MarkerNormaliser(n_sources)
    got = "".join(stream.feed(p) for p in _pieces(text, cut)) + stream.finish()
    assert got == expected and stream.dropped == whole.dropped
    assert all(1 <= int(k) <= n_sources for k in re.findall(r"\[(\d+)\]", got))
    assert not re.search(r"【|［|\[\s*(?:source|\^)", got, re.I)  # no other marker shape survives


@settings(max_examples=300, deadline=None)
@given(soup, cuts, st.integers(1, 4))
def test_verified_text_is_numbered_by_first_appearance_and_streaming_agrees(text, cut, n_sources):
    sources = SOURCES[:n_sources]
    v = Verifier(sources, "When was the treaty signed?", ("sk-secret",))
    streamed = "".join(v.feed(p) for p in _pieces(text, cut)) + v.finish()
    verdict = v.verdict()
    assert streamed == verdict.text
    shown = [int(k) for k in re.findall(r"\[(\d+)\]", streamed)]
    assert list(dict.fromkeys(shown)) == list(range(1, len(set(shown)) + 1))  # 1, 2, 3 by first appearance
    assert len(verdict.cited) == len(set(shown)) and all(1 <= n <= n_sources for n in verdict.cited)
    whole = Verifier(sources, "When was the treaty signed?", ("sk-secret",))
    assert whole.feed(text) + whole.finish() == streamed


def test_renumbering_examples():
    r = Renumberer()
    assert r.apply("A [2], B [2] and C [1][3].") == "A [1], B [1] and C [2][3]."
    assert r.cited() == [2, 1, 3]


def test_each_sentence_is_checked_against_the_source_it_cites():
    sources = ["The treaty was signed in Astana on May 5, 1999.", "The river floods every spring."]
    v = Verifier(sources, "When was the treaty signed?")
    v.feed("It was signed in Astana on May 5, 1999 [1]. The river floods every spring [1][2]. "
           "It was signed on May 6, 1999 [1].")
    v.finish()
    d = v.verdict()
    assert d.text == "It was signed in Astana on May 5, 1999 [1]. The river floods every spring [2]."
    assert d.cited == [1, 2] and d.ungrounded_markers == [1] and d.dropped_sentences == ["its source does not state it"]


def test_groundedness_measure_accepts_supported_and_rejects_altered_claims(built):
    """evals.grounding on the seeds' dev split: what the README reports, as a floor."""
    import json
    from pathlib import Path

    from evals.grounding import measure
    from rag.engine import Engine
    from rag.grounding import MIN_COVERAGE

    items = [json.loads(line) for line in (Path(__file__).parents[1] / "evals/seeds_qa.jsonl").read_text().splitlines() if line.strip()]
    table = measure(Engine(built), [it for it in items if it["split"] == "dev"])["dev"]

    def rate(kind):
        accepted, total = table[kind][MIN_COVERAGE]
        return accepted / total

    assert rate("verbatim") == rate("short") == 1.0 and rate("paraphrase") >= 0.9
    assert rate("wrong source") == rate("wrong number") == rate("other sentence") == 0.0
    assert rate("wrong answer") <= 0.3  # a swapped common word inside a long sentence can pass: see README
