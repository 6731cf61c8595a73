"""Untrusted text (model output, documents) loses escapes, control characters and secrets."""

from hypothesis import given, settings, strategies as st

from rag.textsafe import StreamCleaner, clean, strip_controls

SECRET = "sk-live-abc123"


def test_terminal_escapes_and_controls_are_removed_newlines_stay():
    hostile = "Title\x1b[2J\x1b]0;pwned\x07 \x1b[31mred\x1b[0m\rover\x08\x00\u202eevil\u202c\ttab\r\nnext\x9b31m"
    assert strip_controls(hostile) == "Title redoverevil\ttab\nnext"


def test_secret_is_redacted_even_when_split_by_escapes():
    assert clean("key sk-live-\x1b[0mabc123 end", [SECRET]) == "key *** end"


def _pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


alphabet = st.sampled_from(list("ab [1]\n\t\r") + ["\x1b", "\x1b[", "31m", "\x1b]0;t\x07", "\x9b", "sk-", "live-", SECRET, "abc123"])


@settings(max_examples=400, deadline=None)
@given(st.lists(alphabet, max_size=30).map("".join), st.lists(st.integers(0, 400), max_size=8))
def test_streamed_cleaning_equals_cleaning_the_whole_text(text, cuts):
    cleaner = StreamCleaner([SECRET])
    streamed = "".join(cleaner.feed(p) for p in _pieces(text, cuts)) + cleaner.finish()
    assert streamed == clean(text, [SECRET])
    assert SECRET not in streamed and "\x1b" not in streamed and "\r" not in streamed
