"""Properties on arbitrary input (hypothesis) for reading, cleaning, sentence splitting and chunking.

Whatever bytes a file holds, reading gives a document or a reason to skip it, never a crash; the
text that comes out is safe to print; splitting and chunking lose no words.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import HealthCheck, given, settings, strategies as st

from rag.chunk import chunk_document, make_splitter, sections
from rag.clean import clean_text, normalize
from rag.load import parse_document
from rag.records import SourceDoc
from rag.sentences import split_keep_whitespace, split_sentences

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

# Text that looks like documents and like their worst cases: words, abbreviations, initials,
# numbers, runs of punctuation and whitespace, escapes, controls, combining marks, CJK.
_PIECES = st.sampled_from([
    " ", " ", " ", "\n", "\n\n", "\t", "\r\n", ". ", "! ", "? ", "…", ", ", ";", "...", "((", "))", "\"", "”",
    "Mr.", "Dr.", "Oct.", "J.", "12.", "U.S.", "e.g.", "am", "Dezember", "Astana", "Tokajew", "2024", "x",
    "\x1b[2J", "\x1b]0;t\x07", "\x00", "\x0c", "\u00a0", "\u200b", "\ufeff", "e\u0301", "東京", "🙂", "\u202e",
    "Leave a review", "Press contact:", "Nov 18, 2016", "date 2024-10-15 ", "# Title", "- item", "<p>", "</p>",
])
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=60).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["a.txt", "b.md", "c.html", "d.pdf", "e.rst"]),
       st.one_of(st.binary(max_size=400), _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_reading_any_bytes_gives_a_safe_document_or_a_reason(name, data):
    try:
        doc = parse_document(name, data)
    except ValueError as err:
        assert str(err)  # the reason the warning shows
        return
    for text in (doc.text, doc.title):
        assert not _UNSAFE.search(text), repr(text)
        text.encode("utf-8")  # storable and printable
    assert doc.text.strip() and doc.source == name and len(doc.sha256) == 64


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_cleaning_only_drops_text_never_invents_it(raw):
    cleaned = clean_text(raw)
    allowed = set(normalize(raw)) | {"\n", " "}
    assert set(cleaned.text) <= allowed
    assert "\r" not in cleaned.text and "\n\n\n" not in cleaned.text
    assert set(cleaned.title) <= allowed | {"…"}


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_sentences_are_ordered_disjoint_and_cover_every_visible_character(text):
    spans = split_sentences(text)
    covered = set()
    last = 0
    for a, b in spans:
        assert last <= a < b <= len(text)
        assert text[a:b].strip() == text[a:b]  # trimmed, never empty
        covered.update(range(a, b))
        last = b
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())
    pieces = split_keep_whitespace(text)
    assert "".join(pieces) == text


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.integers(10, 400), st.integers(1, 300))
def test_sections_join_back_to_the_text_and_respect_the_limit(text, max_chars, hard_chars):
    parts = list(sections(text, max_chars=max_chars, hard_chars=hard_chars))
    assert "".join(parts) == text
    assert all(0 < len(p) <= max_chars for p in parts)


_WORDS = st.lists(
    st.tuples(st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=12),
              st.sampled_from([" ", " ", " ", ". ", ", ", "\n", "\n\n", "! ", " (", ") ", "; ", "... "])),
    min_size=20, max_size=400,
).map(lambda pairs: "".join(w + sep for w, sep in pairs))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_WORDS, st.sampled_from([(64, 10), (200, 40)]), st.integers(60, 2000))
def test_chunks_cover_every_word_fit_the_model_and_are_stable(embedder, text, sizes, section_chars):
    size, overlap = sizes
    splitter = make_splitter(size, overlap, embedder.token_ids)
    doc = SourceDoc("p.txt", text, "t", None, "en", "0")
    chunks = chunk_document(doc, splitter, max_section_chars=section_chars)
    for word in set(re.findall(r"\w+", text)):
        assert any(word in c.text for c in chunks), word
    assert all(len(embedder.token_ids(c.text)) <= size for c in chunks)
    assert [c.id for c in chunks] == [c.id for c in chunk_document(doc, splitter, max_section_chars=section_chars)]
    assert [c.n for c in chunks] == list(range(len(chunks)))
    for c in chunks:  # sentence offsets point into the chunk
        assert all(0 <= a < b <= len(c.text) for a, b in c.sentences)


def test_nfc_does_not_split_a_word_across_sections():
    """Sections cut at whitespace when there is any, so accents stay on their letters."""
    text = ("Caf" + "e\u0301 ") * 2000
    parts = list(sections(unicodedata.normalize("NFD", text), max_chars=500))
    assert all(not unicodedata.combining(p[0]) for p in parts)
