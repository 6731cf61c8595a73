"""A pure sentence splitter that knows news-text abbreviations ("Oct. 14", "Mr.", "12. Dezember").

llama-index's default (NLTK punkt) splits at "Oct. " and German ordinal dates, which cuts dates
away from the facts they belong to; chunking and the extractive answerer both use this instead.

>>> [s for s in split_sentence_texts("It met on Oct. 14 in Ashgabat. Then it ended.")]
['It met on Oct. 14 in Ashgabat.', 'Then it ended.']
"""

from __future__ import annotations

import re

ABBREVIATIONS = {
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "mr", "mrs", "ms", "dr", "prof", "st", "no", "nos", "vol", "fig", "gen", "gov", "sen", "rep",
    "jr", "sr", "inc", "ltd", "co", "corp", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "u.n", "approx",
    "dept", "est", "min", "max", "bzw", "ca", "dr", "nr", "z.b", "u.a", "d.h", "usw", "vgl", "s", "al",
    # Titles before a name ("Rev. Paul T. Stallsworth", "Lt. Col. Smith", "Mt. Everest").
    "rev", "lt", "col", "capt", "sgt", "hon", "pres", "adm", "maj", "cpl", "pvt", "messrs", "mt", "bros",
    # German abbreviations a capitalised noun follows ("30 Mio. Euro", "im 5. Jh. Kaiser …", "v. Chr. Geburt").
    "mio", "mrd", "tsd", "jh", "jhd", "chr", "sog", "evtl", "ggf", "inkl", "zzgl", "geb", "gest", "str", "abb", "bd",
}
# Abbreviations that can also end a sentence ("… and so on, etc.", "Smith & Co.", "44 v. Chr.").
ENDING_ABBREVIATIONS = {"etc", "usw", "al", "inc", "ltd", "co", "corp", "bros", "jr", "sr", "u.s", "u.k", "u.n", "chr",
                        "jh", "jhd"}
# A match starts only where a run of end marks starts (the lookbehind): a long run of dots is
# then scanned once, not once per character (which made splitting quadratic).
_BOUNDARY = re.compile(r"(?<![.!?…])[.!?…]+[\"”’')\]]*(?=\s)")
_NEWLINE = re.compile(r"\n\s*")
_LAST_WORD = re.compile(r"(\S+)\Z")
_MAX_WORD = 24  # longer than any abbreviation, initial or ordinal the rules below know
# Words that open a sentence but never follow a German ordinal ("am 12. Dezember", "im 19.
# Jahrhundert": a noun or adjective follows): after "at age 39." or "Er wurde 39." they start the
# next sentence.
_OPENERS = frozenset("""the a an he she it they we i you this these that those his her its their there in on at
after during when while but however then der die das den dem des ein eine einen einem er sie es wir ich dies
diese dieser dieses sein seine ihr ihre dort damals danach""".split())

# Function words that tell English from German in the text before a number and a period: a German
# ordinal ("die 2. Liga") is not read in English text ("at age 39. Peyton Manning"). Words both
# languages write ("in", "an", "am", "war", and "von" of English names like "Von Miller") are
# left out.
_ENGLISH = frozenset("the a of on at to is was were are and for with by from he she it they his her its their "
                     "as that which this has had been who i my we you".split())
_GERMAN = frozenset("der die das des dem den ein eine einer eines einem und im vom zum zur ist wurde mit "
                    "für auf bei nach seit bis er sie es sich nicht auch ins beim".split())
_ORDINAL_NOUNS = frozenset("""januar jänner februar märz april mai juni juli august september oktober november
dezember jahrhundert jahrhunderts jahrhunderten jahrtausend jahrtausends""".split())
_CONTEXT = 60  # characters before the period, a few words
_WORD = re.compile(r"[^\W\d_]+")


def _is_false_boundary(text: str, dot: int, after: int) -> bool:
    """True when the period at `dot` ends an abbreviation, an initial or an ordinal, not a sentence."""
    if text[dot] != ".":
        return False
    # The word before the dot, looked for in a bounded window: slicing or searching all of
    # text[:dot] at every boundary made splitting quadratic on long lines.
    window = text[max(0, dot - _MAX_WORD):dot]
    m = _LAST_WORD.search(window)
    word = m.group(1).lower().lstrip("(\"“'‘") if m else ""
    nxt = text[after:after + 1]
    if word in ABBREVIATIONS:
        # … unless it can end a sentence and a capitalised sentence opener follows: "… etc. The next
        # …", "44 v. Chr. Danach …" (but "e.g. The Times", "z.B. Die Zeit" go on).
        return not (word in ENDING_ABBREVIATIONS and nxt[:1].isupper() and _next_word(text, after) in _OPENERS)
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. Smith"
    if word.isdigit() and len(word) <= 2 and nxt[:1].isupper():
        # German ordinal ("am 12. Dezember", "im 19. Jahrhundert") when a month or century follows;
        # a sentence end before a sentence opener ("at age 39. The", "Er war 86. Die …") and in
        # English text ("… won Super Bowl 50. Manning retired."); else an ordinal ("Die 2. Liga").
        following = _next_word(text, after)
        if following in _ORDINAL_NOUNS:
            return True
        return following not in _OPENERS and _language_before(text, dot) != "en"
    return bool(nxt) and nxt.islower()


def _language_before(text: str, dot: int) -> str | None:
    """'de' or 'en' when the words just before `dot` hold more German or more English function
    words; None when neither (or as many of each)."""
    words = _WORD.findall(text[max(0, dot - _CONTEXT):dot].lower())
    german, english = sum(w in _GERMAN for w in words), sum(w in _ENGLISH for w in words)
    return "de" if german > english else "en" if english > german else None


def _next_word(text: str, at: int) -> str:
    m = re.match(r"\w+", text[at:at + _MAX_WORD])
    return m.group(0).lower() if m else ""


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences in `text`, whitespace trimmed, newlines always splitting."""
    spans: list[tuple[int, int]] = []
    for para in _paragraph_spans(text):
        start = para[0]
        for m in _BOUNDARY.finditer(text, para[0], para[1]):
            after = m.end()
            while after < para[1] and text[after].isspace():
                after += 1
            if after >= para[1] or _is_false_boundary(text, m.start(), after):
                continue
            spans.append((start, m.end()))
            start = after
        if start < para[1]:
            spans.append((start, para[1]))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _NEWLINE.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            out.append((a, b))
    return out


def split_sentence_texts(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def split_keep_whitespace(text: str) -> list[str]:
    """Pieces that concatenate back to `text`, one per sentence (the form llama-index expects)."""
    spans = split_sentences(text)
    if not spans:
        return [text] if text else []
    cuts = [0] + [a for a, _ in spans[1:]] + [len(text)]
    return [text[cuts[i]:cuts[i + 1]] for i in range(len(cuts) - 1) if cuts[i] < cuts[i + 1]]
