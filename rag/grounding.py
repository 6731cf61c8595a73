"""Check an LLM's reply sentence by sentence before anyone sees it (pure; works on a stream).

The rule (the README's "verification rule"):
1. The reply is cleaned (no control characters, no API key) and its citation markers are
   normalised to `[n]`, n numbering the retrieved sources; unmappable markers are dropped.
2. It is cut into sentences. A sentence whose content words all come from the question (or are
   filler such as "according to the sources") adds nothing to check: it is *connective*. Every
   other sentence is a *claim*.
3. A claim is covered by its own markers, or else by the markers of the next cited sentence in
   the same paragraph ("A. B [1]." cites [1] for both). A claim with no covering marker is dropped.
4. Groundedness, without an LLM judge: a marker is kept only if its source contains at least one
   of the claim's new words (those not in the question); the claim stands only if the kept
   sources together contain at least `MIN_COVERAGE` of its new words and every number it states.
5. Nothing is shown until a claim stands; connective sentences are shown only with standing
   claims. If no claim stands the reply is discarded (the engine falls back), unless the reply
   is the "couldn't find this in the documents" answer, which is an honest abstention.
Shown sentences are renumbered so the cited sources read [1], [2], ... in order of appearance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.citations import MarkerNormaliser, Renumberer, markers, strip_markers
from rag.lexical import content_words, fold
from rag.prompt import NOT_FOUND
from rag.textsafe import StreamCleaner

# Share of a claim's new words its sources must contain; measured in evals/grounding.py.
MIN_COVERAGE = 0.6
# Words that carry no checkable content in an answer.
FILLER = set(
    """according source sources document documents text passage passages provided based information
    stated says said mentions mentioned notes noted reports reported indicates indicated
    answer question sure certainly yes no here following found find shown shows given context also however
    furthermore additionally therefore thus specifically namely overall summary quelle quellen laut
    dokument dokumenten dokumente""".split()
)
_BOUNDARY = re.compile(
    r"(?:[.!?…]+[\"'”’»)]*|[。！？]+)(?:[ \t]*\[\d+\])*(?P<ws>\s+)(?=\S)"  # end of sentence
    r"|(?<=[。！？])(?P<cjk>)(?=[^\s\[])"
    r"|(?P<nl>[ \t]*\n\s*)(?=\S)"  # a line break (list items, headings)
)
_NUMBER = re.compile(r"\d+")


def _number_set(text: str) -> set[str]:
    return {n.lstrip("0") or "0" for n in _NUMBER.findall(text)}


def _same_word(a: str, b: str) -> bool:
    """Equal, or the same word inflected ('chaired'/'chair', 'neutrality'/'neutralität')."""
    if a == b:
        return True
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n >= 4 and n >= 0.75 * min(len(a), len(b))


def new_words(sentence: str, question: str) -> tuple[list[str], set[str]]:
    """The claim's checkable content: words not in the question (nor filler), and its numbers."""
    body = strip_markers(sentence)
    asked = set(content_words(question))
    words = [w for w in dict.fromkeys(content_words(body))
             if not any(c.isdigit() for c in w) and w not in FILLER and not any(_same_word(w, q) for q in asked)]
    numbers = _number_set(body) - _number_set(question)
    return words, numbers


def coverage(words: list[str], numbers: set[str], source: str) -> tuple[float, bool]:
    """Share of `words` found in `source`, and whether every number is there too."""
    vocab = set(re.findall(r"\w+", fold(source)))
    by_prefix = {v[:4] for v in vocab}
    found = sum(1 for w in words if w in vocab or (w[:4] in by_prefix and any(_same_word(w, v) for v in vocab)))
    share = found / len(words) if words else 1.0
    return share, numbers <= _number_set(source)


@dataclass
class _Sentence:
    sep: str  # whitespace before it in the reply
    text: str  # with canonical markers
    words: list[str]
    numbers: set[str]
    own: list[int]  # its own markers
    status: str = "wait"  # wait | show | drop | connective | abstain
    kept: list[int] = field(default_factory=list)
    coverage: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Verdict:
    text: str  # exactly what was shown, markers renumbered
    cited: list[int]  # source numbers in shown order ([1] is cited[0])
    claims: int  # claim sentences in the reply
    shown_claims: int
    abstained: bool
    dropped_sentences: list[str]  # reasons, one per dropped claim
    dropped_markers: list[str]  # markers that named no source, as written
    ungrounded_markers: list[int]  # markers removed because their source lacks the claim's words
    coverages: list[float]  # per checked claim, for measurement

    @property
    def discarded(self) -> bool:
        return not self.shown_claims and not self.abstained


class Verifier:
    """Feed the raw reply (in pieces or whole); get back only what passed, as it passes."""

    def __init__(self, sources: list[str], question: str, secrets: tuple[str, ...] = ()) -> None:
        self.sources = sources  # source n is sources[n - 1]
        self.question = question
        self._cleaner = StreamCleaner(secrets)
        self._markers = MarkerNormaliser(len(sources))
        self._renum = Renumberer()
        self._buf = ""
        self._pending: list[_Sentence] = []
        self._carry = ""  # a paragraph break carried over a dropped sentence
        self._shown: list[str] = []
        self._done: list[_Sentence] = []
        self._any_claim_shown = False
        self._next_sep = ""  # whitespace between the last sentence taken and the next

    # ----- streaming ---------------------------------------------------------------------
    def feed(self, piece: str) -> str:
        self._buf += self._markers.feed(self._cleaner.feed(piece))
        out = []
        while True:
            m = _BOUNDARY.search(self._buf)
            if not m:
                break
            end = m.start("ws") if m.group("ws") is not None else m.start("nl") if m.group("nl") is not None else m.end()
            sentence, sep = self._buf[:end], self._buf[end:m.end()]
            self._buf = self._buf[m.end():]
            out.append(self._add(sentence))
            self._next_sep = sep
        return "".join(out)

    def finish(self) -> str:
        self._buf += self._markers.feed(self._cleaner.finish())
        self._buf += self._markers.finish()
        out = self._add(self._buf) if self._buf.strip() else ""
        self._buf = ""
        self._close_paragraph()
        out += self._flush(final=True)
        if not self._shown and any(s.status == "abstain" for s in self._done):
            self._shown.append(NOT_FOUND)
            out += NOT_FOUND
        return out

    # ----- sentences ---------------------------------------------------------------------
    def _add(self, sentence: str) -> str:
        sep, self._next_sep = self._next_sep, ""
        out = ""
        if sep.count("\n") >= 2:
            self._close_paragraph()
            out += self._flush()
        text = sentence.strip()
        if not text:
            return out
        words, numbers = new_words(text, self.question)
        s = _Sentence(sep, text, words, numbers, markers(text))
        body = fold(strip_markers(text)).replace("’", "'")
        if "couldn't find this in the documents" in body or "could not find this in the documents" in body:
            s.status = "abstain"
        elif not words and not numbers:
            s.status = "connective"
        self._pending.append(s)
        if s.own:
            for waiting in self._pending:
                if waiting.status == "wait":
                    self._check(waiting, waiting.own or s.own)
        return out + self._flush()

    def _check(self, s: _Sentence, cited: list[int]) -> None:
        kept = []
        for n in cited:
            share, _ = coverage(s.words, set(), self.sources[n - 1])
            if share > 0 or not s.words:
                kept.append(n)
        union = " ".join(self.sources[n - 1] for n in kept)
        s.coverage, numbers_ok = coverage(s.words, s.numbers, union) if kept else (0.0, False)
        s.kept = kept
        if kept and s.coverage >= MIN_COVERAGE and numbers_ok:
            s.status = "show"
        else:
            s.status = "drop"
            s.reason = "its source does not state it" if kept else "its cited source does not contain its words"

    def _close_paragraph(self) -> None:
        for s in self._pending:
            if s.status == "wait":
                s.status, s.reason = "drop", "it cites no source"

    def _flush(self, final: bool = False) -> str:
        ready = 0
        while ready < len(self._pending) and self._pending[ready].status != "wait":
            ready += 1
        batch = self._pending[:ready]
        if not (self._any_claim_shown or any(s.status == "show" for s in batch) or final):
            return ""
        del self._pending[:ready]
        out = []
        for s in batch:
            self._done.append(s)
            if s.status == "drop" or (final and not self._any_claim_shown and s.status != "show"):
                if s.sep.count("\n") > self._carry.count("\n"):
                    self._carry = s.sep
                continue
            self._any_claim_shown |= s.status == "show"
            text = s.text
            if s.status == "show" and s.own:
                for n in set(s.own) - set(s.kept):
                    text = text.replace(f"[{n}]", "")
            elif s.status == "show":  # covered by the next sentence's marker: say so here too
                text = _with_markers(text, s.kept)
            text = self._renum.apply(_tidy(text))
            sep = max(s.sep, self._carry, key=lambda x: x.count("\n")) if self._shown else ""
            self._carry = ""
            self._shown.append(sep + text)
            out.append(sep + text)
        return "".join(out)

    # ----- result ------------------------------------------------------------------------
    def verdict(self) -> Verdict:
        done = self._done
        claims = [s for s in done if s.status in ("show", "drop")]
        shown = [s for s in claims if s.status == "show"]
        abstained = not shown and any(s.status == "abstain" for s in done)
        return Verdict(
            text="".join(self._shown) if shown else (NOT_FOUND if abstained else ""),
            cited=self._renum.cited(),
            claims=len(claims),
            shown_claims=len(shown),
            abstained=abstained,
            dropped_sentences=[s.reason for s in claims if s.status == "drop"],
            dropped_markers=list(self._markers.dropped),
            ungrounded_markers=sorted({n for s in claims for n in s.own if n not in s.kept and s.status == "show"}),
            coverages=[s.coverage for s in claims if s.status == "show" or s.own or s.kept],
        )


def _with_markers(text: str, numbers: list[int]) -> str:
    tags = "".join(f"[{n}]" for n in numbers)
    m = re.search(r"[.!?。！？…]+[\"'”’»)]*$", text)
    return f"{text[:m.start()]} {tags}{text[m.start():]}" if m else f"{text} {tags}"


def _tidy(text: str) -> str:
    return re.sub(r"[ \t]+([.,;:!?。])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
