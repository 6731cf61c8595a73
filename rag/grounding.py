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
   of the claim's new words (those not in the question nor filler). The claim stands only if the
   kept sources together contain at least `MIN_COVERAGE` of its new words, every name it states
   (a capitalised word) and every number, each number near a word it stands near in the claim
   (within two content words: "August 9" → 9 near "August"). Words match when equal, inflected, or spelled
   another way (two edits in a long word: Tokayev/Tokajew). A cited sentence that only restates
   the question is checked on all its words.
5. Nothing is shown until a claim stands; connective sentences are shown only with standing
   claims. If no claim stands the reply is discarded (the engine falls back), unless the reply
   is the "couldn't find this in the documents" answer, which is an honest abstention.
Shown sentences are renumbered so the cited sources read [1], [2], ... in order of appearance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.citations import MarkerNormaliser, Renumberer, markers, strip_markers, tidy
from rag.lexical import STOPWORDS, content_words, fold
from rag.records import NOT_FOUND
from rag.textsafe import StreamCleaner

# Share of a claim's new words its sources must contain. Chosen on the dev split of evals/seeds_qa.jsonl
# (python -m evals.grounding: 0.3 to 0.6 tie there; the middle of the tie), reported on its test split.
MIN_COVERAGE = 0.5
# Words that carry no checkable content in an answer.
FILLER = set(
    """according source sources document documents text passage passages provided based information
    stated says said mentions mentioned notes noted reports reported indicates indicated
    answer question sure certainly yes no here following found find shown shows given context also however
    furthermore additionally therefore thus specifically namely overall summary quelle quellen laut
    dokument dokumenten dokumente""".split()
)
_BOUNDARY = re.compile(
    r"(?:[.!?…]+[\"'”’»)]*|[。！？]+)(?:[ \t]*\[\d+\])*(?P<ws>\s+)(?=[^\s\[])"  # end of sentence (markers after it are its own)
    r"|(?<=[。！？])(?P<cjk>)(?=[^\s\[])"
    r"|(?P<nl>[ \t]*\n\s*)(?=[^\s\[])"  # a line break (list items, headings)
)
_TOKEN = re.compile(r"\d+|[^\W\d_]+")


def _tokens(text: str) -> list[str]:
    """Folded words and digit runs, in order ('10th' → '10', 'th'; '09' → '9')."""
    return [t.lstrip("0") or "0" if t.isdigit() else t for t in _TOKEN.findall(fold(text))]


def _number_contexts(tokens: list[str], window: int = 2) -> dict[str, set[str]]:
    """Each number → the content tokens near it ('on August 9, 2024 in' → 9: {august, 2024})."""
    content = [t for t in tokens if t not in STOPWORDS]
    out: dict[str, set[str]] = {}
    for i, t in enumerate(content):
        if t.isdigit():
            out.setdefault(t, set()).update(content[max(0, i - window):i] + content[i + 1:i + 1 + window])
    return out


def _distance_at_most(a: str, b: str, k: int) -> bool:
    """Levenshtein distance ≤ k (banded; the words are short)."""
    if abs(len(a) - len(b)) > k:
        return False
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        if min(cur) > k:
            return False
        prev = cur
    return prev[-1] <= k


def same_word(a: str, b: str) -> bool:
    """Equal, inflected ('chaired'/'chair', 'neutrality'/'neutralität'), or spelled another way
    ('Tokayev'/'Tokajew': two edits in a word of six letters or more)."""
    if a == b:
        return True
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    if n >= 4 and n >= 0.75 * min(len(a), len(b)):
        return True
    return min(len(a), len(b)) >= 6 and _distance_at_most(a, b, 2)


@dataclass(frozen=True)
class Claim:
    """What a sentence asserts beyond the question: the part a source must contain."""

    words: tuple[str, ...]  # content words not in the question, nor filler
    names: tuple[str, ...]  # capitalised words among them (names, places): each must be found
    numbers: dict  # number → content tokens near it in the sentence; each must be found, in like company
    restated: tuple[str, ...]  # all content words, for a sentence that only restates the question


def claim_of(sentence: str, question: str) -> Claim:
    body = strip_markers(sentence)
    asked = set(content_words(question))
    asked_numbers = {t for t in _tokens(question) if t.isdigit()}

    def new(w: str) -> bool:
        return w not in FILLER and not any(same_word(w, q) for q in asked)

    words = tuple(w for w in dict.fromkeys(content_words(body)) if not any(c.isdigit() for c in w) and new(w))
    raw = re.findall(r"[^\W\d_]\w*", body)[1:]  # the first word is capitalised anyway
    names = tuple(dict.fromkeys(fold(w) for w in raw if w[0].isupper() and fold(w) in words))
    tokens = _tokens(body)
    numbers = {n: ctx for n, ctx in _number_contexts(tokens).items() if n not in asked_numbers}
    restated = tuple(w for w in dict.fromkeys(content_words(body)) if w not in FILLER)
    return Claim(words, names, numbers, restated)


class _Source:
    """A retrieved source, indexed once for the checks."""

    def __init__(self, text: str) -> None:
        tokens = _tokens(text)
        self.vocab = {t for t in tokens if not t.isdigit()}
        self.by_prefix: dict[str, list[str]] = {}
        for v in self.vocab:
            self.by_prefix.setdefault(v[:2], []).append(v)
        self.numbers = _number_contexts(tokens)

    def has(self, word: str) -> bool:
        if word in self.vocab:
            return True
        return any(same_word(word, v) for v in self.by_prefix.get(word[:2], ()))

    def has_number(self, n: str, context: set[str]) -> bool:
        """Present, and near one of the tokens it stands near in the claim (if it has any)."""
        if n not in self.numbers:
            return False
        return not context or bool(context & self.numbers[n])


def supports(claim: Claim, sources: list[_Source], words: tuple[str, ...]) -> tuple[float, bool]:
    """(share of `words` the sources contain, whether they contain every name and number)."""
    share = sum(1 for w in words if any(s.has(w) for s in sources)) / len(words) if words else 1.0
    names = all(any(s.has(n) for s in sources) for n in claim.names)
    numbers = all(any(s.has_number(n, ctx) for s in sources) for n, ctx in claim.numbers.items())
    return share, names and numbers


@dataclass
class _Sentence:
    sep: str  # whitespace before it in the reply
    text: str  # with canonical markers
    claim: Claim
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

    def __init__(self, sources: list[str], question: str, secrets: tuple[str, ...] = (),
                 min_coverage: float = MIN_COVERAGE) -> None:
        self.sources = [_Source(t) for t in sources]  # source n is sources[n - 1]
        self.question = question
        self.min_coverage = min_coverage
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
        self._seen: set[str] = set()

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
        key = " ".join(fold(text).split())
        if not text or key in self._seen:
            return out  # a model looping on one sentence says it once
        self._seen.add(key)
        claim = claim_of(text, self.question)
        s = _Sentence(sep, text, claim, markers(text))
        body = fold(strip_markers(text)).replace("’", "'")
        if "couldn't find this in the documents" in body or "could not find this in the documents" in body:
            s.status = "abstain"
        elif not claim.words and not claim.numbers and not (s.own and claim.restated):
            s.status = "connective"  # adds nothing to check (a cited restatement is checked below)
        self._pending.append(s)
        if s.own:
            for waiting in self._pending:
                if waiting.status == "wait":
                    self._check(waiting, waiting.own or s.own)
        return out + self._flush()

    def _check(self, s: _Sentence, cited: list[int]) -> None:
        c = s.claim
        words = c.words if (c.words or c.numbers) else c.restated
        kept = [n for n in cited if not words or supports(c, [self.sources[n - 1]], words)[0] > 0]
        share, exact = supports(c, [self.sources[n - 1] for n in kept], words) if kept else (0.0, False)
        s.kept, s.coverage = kept, share
        if kept and share >= self.min_coverage and exact:
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
            text = self._renum.apply(tidy(text))
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

