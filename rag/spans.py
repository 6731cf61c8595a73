"""Short answers: what a question asks for, and the span of a sentence that supplies it.

Classic factoid QA (the TREC QA track's answer typing): the question word fixes the expected
answer type (who → a name, when → a date, how many → a number, how long → a duration, how often →
a frequency, where → a place), candidate spans of that type are taken verbatim from the cited
sentence, spans made of the question's own words are dropped, and the candidate nearest the words
the sentence shares with the question wins. English and German question words are both understood. Pure functions, no I/O.

>>> answer_type("How many people live in the valley?")
'number'
>>> best_span("number", "How many points did the defense give up?", "The defense gave up just 308 points.")
'308'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.languages import STOPWORDS, fold
from rag.lexicon import is_common_word

# (pattern on the folded question, answer type). The match that starts first wins; of matches at the
# same question word, the rule listed first, so the more specific rules come first.
_TYPE_RULES: tuple[tuple[str, str], ...] = (
    (r"\bhow (?:often|frequently)\b|\bwie (?:oft|haufig)\b|\bin welchen abstanden\b", "frequency"),
    (r"\bhow old\b|\bwie alt\b|\bat what age\b|\bin welchem alter\b|\bmit wie viel(?:en)? jahren\b", "age"),
    (r"\bhow long\b|\bwie lange?\b|\bfor how many (?:years|months|weeks|days|hours|minutes)\b", "duration"),
    (r"\bhow many (?:years|months|weeks|days|hours|minutes|seconds|centuries|decades) (?:did|does|do|was|were|is|are|had|has|have|will|would|after|before|ago|long)\b", "duration"),
    (r"\bwie viele (?:jahre|monate|wochen|tage|stunden|minuten|sekunden|jahrhunderte|jahrzehnte)\b", "duration"),
    (r"\bhow (?:many|much)\b|\bwie ?viele?n?\b|\bwieviele?\b|\bwhat (?:percentage|percent|proportion|amount|number|fraction)\b"
     r"|\bwelche(?:r|n|s|m)? (?:anteil|prozentsatz|betrag|anzahl|zahl|menge)\b", "number"),
    (r"\bwhen\b|\bwann\b|\bseit wann\b|\b(?:what|which|in what|in which) (?:year|date|day|month|century|decade|era|period)\b"
     r"|\b(?:welche(?:r|n|s|m)?|in welche(?:r|n|s|m)?) (?:jahr|datum|tag|monat|jahrhundert|jahrzehnt|zeitraum)\b", "date"),
    (r"\bwho(?:m|se)?\b|\bwer\b|\bwen\b|\bwem\b|\bwessen\b", "person"),
    (r"\bwhere\b|\bwo(?:her|hin)?\b|\bin (?:what|which) (?:city|country|state|region|place|town|area|county|province)\b", "place"),
    (r"\b(?:what|which|welche(?:r|n|s|m)?) (?:city|country|state|region|place|town|area|county|province|continent|river|island"
     r"|location|stadt|land|staat|region|ort|gegend|kontinent|fluss|insel|provinz)\b", "place"),
    # Nouns for people by role (general English/German vocabulary, not drawn from any dataset).
    (r"\b(?:what|which|welche(?:r|n|s|m)?) (?:person|people|man|woman|men|women|king|queen|prince|princess|emperor|empress"
     r"|president|chancellor|minister|governor|mayor|senator|leader|ruler|founder|owner|director|manager|chairman|judge"
     r"|bishop|pope|general|officer|soldier|player|athlete|coach|captain|scientist|inventor|engineer|explorer|philosopher"
     r"|author|writer|poet|artist|painter|composer|musician|singer|actor|actress|architect|doctor|teacher|student"
     r"|mann|frau|konig|konigin|prinz|prinzessin|kaiser|kaiserin|prasident|kanzler|minister|gouverneur|burgermeister"
     r"|herrscher|grunder|besitzer|direktor|leiter|richter|bischof|papst|soldat|spieler|sportler|trainer|kapitan"
     r"|wissenschaftler|erfinder|ingenieur|philosoph|autor|schriftsteller|dichter|kunstler|maler|komponist|musiker"
     r"|sanger|schauspieler|architekt|arzt|lehrer|student)\b", "person"),
    (r"\b(?:what|which|welche(?:r|n|s|m)?) (?:team|company|organization|organisation|party|group|university|institution"
     r"|agency|network|church|band|club|firm|mannschaft|firma|unternehmen|organisation|partei|gruppe|universitat|institution"
     r"|behorde|sender|kirche|verein)\b", "name"),
    # A name for something: "What is X called?", "another term for X", "Wie nennt man X?". Not "What
    # does X mean?": a meaning is not a name. Last: "What year was the bridge named?" asks for a year.
    (r"\bwhat\b[^?]{0,80}?\b(?:called|termed|named|known as|referred to as|described as)\s*(?:$|\?|when\b|if\b|that\b|by\b|in\b)"
     r"|\b(?:called|termed|known as|referred to as)\s+what\b|\bwhat (?:is|are|was|were) (?:another|other|the|a|one) (?:term|name|word|synonym|nickname) for\b"
     r"|\bwie (?:nennt man|heisst|heißt)\b|\bwie (?:wird|werden)\b[^?]{0,60}\b(?:genannt|bezeichnet)\b|\bbekannt als\b"
     r"|\b(?:andere[rns]?|ein) (?:begriff|name|wort|ausdruck|bezeichnung) fur\b", "term"),
)
_TYPE_RES = tuple((re.compile(p), t) for p, t in _TYPE_RULES)
# Head nouns that names are made of ("Labor Party", "Harvard University", "Charles River"): the
# question naming the kind ("Which party …?") does not make the name one the question already holds.
_NAME_HEADS = frozenset("""party parties university company corporation river city island islands church club team group
agency network institution organization organisation band firm county state province region mountain mountains lake sea
ocean bay street square bridge hotel station airport school college academy museum hospital council committee court union
bank society foundation institute empire kingdom dynasty republic army navy movement
partei universitat fluss stadt insel kirche verein gruppe mannschaft firma unternehmen behorde sender brucke schule
akademie museum krankenhaus rat ausschuss gericht bank gesellschaft stiftung institut reich konigreich dynastie republik
armee bewegung""".split())

_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion "
    "dozen dozens hundreds thousands millions billions half thirds quarters fifths drittel viertel eins zwei drei vier funf fünf sechs sieben acht neun zehn elf zwolf zwölf zwanzig dreissig "
    "dreißig vierzig funfzig fünfzig hundert tausend million millionen milliarde milliarden dutzend halb hunderte hunderten "
    "tausende tausenden"
).split()
_NUMWORD = r"(?:" + "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True)) + r")"
_SCALE = r"(?:\s+(?:million|billion|trillion|thousand|hundred|percent|per cent|Millionen|Million|Milliarden|Milliarde|Prozent|Tausend))?"
_NUM = rf"(?:[$€£]\s?)?\d[\d,.]*(?:½|¼|¾)?(?:\s?%)?{_SCALE}"
_UNIT = (r"(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|centuries|century|decades?|"
         r"Jahren?|Jahrzehnten?|Jahrhunderten?|Jahrhundert|Monaten?|Wochen?|Tagen?|Stunden?|Minuten?|Sekunden?)")
# Full names, and the abbreviations news text writes before a day ("Nov. 15", "Sept. 3").
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Januar|Jänner|Februar|März|Mai|Juni|Juli|Oktober|Dezember|"
          r"(?:Jan|Feb|Mar|Apr|Aug|Sept?|Oct|Nov|Dec)\.(?=\s+\d))")
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{3,4}}|\d{{1,2}}\.?\s+{_MONTH}\s+\d{{3,4}}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?"
    rf"|\d{{1,2}}\.?\s+{_MONTH}|{_MONTH}\s+\d{{3,4}}|\d{{4}}-\d{{2}}-\d{{2}}"
    rf"|(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)\s+century|\d{{1,2}}\.\s+Jahrhundert(?:s)?|\d{{3,4}}s|\d{{3,4}}ern?(?:\s+Jahren?)?"
    rf"|(?:1\d|20)\d{{2}}(?:\s*(?:–|-|to|bis)\s*(?:1\d|20)?\d{{2}})?|\d{{2,4}}\s+(?:BC|AD|BCE|CE|v\.\s?Chr\.|n\.\s?Chr\.))\b"
)
_DURATION = re.compile(rf"(?:\b(?:{_NUM}|(?:an?\s+)?{_NUMWORD})(?:[\s-]+(?:{_NUMWORD}|and|und))*[\s-]+{_UNIT}\b)", re.I)
_NUMBER = re.compile(rf"(?:(?<![\w.])(?:{_NUM})(?![\w])|\b{_NUMWORD}(?:[\s-]{_NUMWORD})*\b)", re.I)
# Capitalized word sequences, allowing small linking words inside ("University of Chicago").
# Latin, Greek and Cyrillic capitals, accented ones included ("École", "Ørsted", "Ängelholm").
_UPPER = "".join(c for c in map(chr, range(0x530)) if c.isupper())
_CAP = rf"[{_UPPER}][\w'’.-]*"
_NAME = re.compile(rf"{_CAP}(?:\s+(?:(?:of|the|de|du|von|van|der|den|des|la|le|and|for|y|da|di|al|bin|zu|für)\s+)*{_CAP})*")
_ARTICLES_DE = {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines", "kein",
                "keine", "sein", "seine", "ihr", "ihre", "dieser", "diese", "dieses", "jeder", "jede", "alle", "zum",
                "zur", "im", "am", "vom", "beim", "ins"}
_PLACE_PREP = {"in", "at", "near", "from", "to", "into", "im", "in", "bei", "nach", "aus", "an", "auf", "nahe"}
_LINKERS = {"of", "the", "de", "du", "von", "van", "der", "den", "des", "la", "le", "and", "for", "y", "da", "di",
            "al", "bin", "zu", "für"}
_WORD = re.compile(r"\w+")
# Capitalised only because they open the sentence: function words and sentence adverbs.
_OPENERS = STOPWORDS | frozenset("""despite although though however meanwhile unlike following according today later
finally instead eventually nevertheless nonetheless moreover furthermore besides additionally initially originally
dennoch jedoch trotz obwohl heute spater schliesslich zunachst ursprunglich ausserdem""".split())
# Titles written before a name without a period ("Mr Piketty", "Sir Alex"): no given names.
_HONORIFICS = frozenset("mr mrs ms dr sir lord lady dame prof herr frau".split())
# Words that change what an amount or date means ("over half", "the late 1980s", "Mitte des 18.
# Jahrhunderts"): a short answer without them would state something else.
_QUALIFIER = re.compile(
    r"(?:\b(?:about|around|approximately|nearly|almost|over|under|roughly|some|more than|less than|fewer than|up to"
    r"|at least|at most|late|early|späte[nmr]?|spate[nmr]?|frühe[nmr]?|fruhe[nmr]?|ungefähr|ungefahr|etwa|rund|fast|knapp|über|uber|mehr als|weniger als|bis zu"
    r"|mindestens|höchstens|hochstens|mitte des|ende des|anfang des|mitte der|ende der|anfang der)\s+|\bmid-)$", re.I)
# Question words; the type rule must match where the question's own (first) question word stands,
# not in a clause after it ("What satellite was used when …" asks for a satellite, not a date).
_WH = re.compile(r"^was\b|\b(?:what|which|who|whom|whose|when|where|how|why|welche[rnsm]?|wer|wen|wem|wessen|wann|wo|woher"
                 r"|wohin|wie|wieviele?|warum|weshalb|wieso)\b")


@dataclass(frozen=True)
class Span:
    text: str
    start: int
    end: int


def answer_type(question: str) -> str | None:
    """'person', 'name', 'place', 'date', 'duration', 'number', 'age', 'frequency', 'term', or None when no
    short answer fits."""
    q = fold(question)
    found = [(m.start(), i, kind) for i, (rx, kind) in enumerate(_TYPE_RES) if (m := rx.search(q))]
    if not found:
        return None
    start, _, kind = min(found)  # the question word that comes first decides; at one word, the earlier rule
    wh = _WH.search(q)
    if wh and wh.end() <= start:
        return None  # the main question word has no type; the match sits in a later clause
    return kind


def _names(sentence: str, german: bool) -> list[Span]:
    out = []
    for m in _NAME.finditer(sentence):
        text = re.sub(r"['’]s$", "", m.group(0).rstrip(".'’-"))  # "Manning's" → "Manning"
        words = text.split()
        while words and words[-1].lower() in _LINKERS:
            words.pop()
        start = m.start()
        before = sentence[:start].rstrip()
        sentence_start = not before or before[-1] in ".!?:;\"“„("
        if sentence_start and len(words) > 1 and fold(words[0]) in _OPENERS:
            start += len(words[0]) + 1  # "Despite Manning", "Die Pittsburgh Steelers": the capital is the sentence's
            words = words[1:]
            sentence_start = False
            before = sentence[:start].rstrip()
        if german:  # "Formen der Autorität": an article between capitals joins two nouns, unless after "von"
            for i in range(1, len(words)):
                if words[i] in _ARTICLES_DE and fold(words[i - 1]) not in ("von", "van", "zu"):
                    words = words[:i]
                    break
            while words and words[-1].lower() in _LINKERS:
                words.pop()
        if not words:
            continue
        text = " ".join(words)
        prev = before.split()[-1].lower() if before.split() else ""
        if re.fullmatch(r"[\d.,½¼¾]+", prev) or fold(prev) in _NUMBER_WORDS:
            continue  # "39 Jahren", "drei Minuten": a unit or counted noun after a number, not a name
        if len(words) == 1:
            if sentence_start:
                continue  # a capital that only starts the sentence
            if german and (prev in _ARTICLES_DE or prev.endswith(("e", "en", "er", "es", "em"))):
                continue  # a German noun after an article or adjective, not a name
        elif sentence_start and german and words[0].lower() in _ARTICLES_DE:
            continue
        out.append(Span(text, start, start + len(text)))
    return out


def _people(names: list[Span]) -> list[Span]:
    """A person's name is at most three words: titles run before it ("defensive tackle Kawann Short")."""
    out = []
    for span in names:
        words = span.text.split()
        if len(words) > 3:
            tail = " ".join(words[-2:])
            span = Span(tail, span.end - len(tail), span.end)
        out.append(span)
    return out


def _qualified(spans: list[Span], sentence: str) -> list[Span]:
    """Each span with the qualifier in front of it ("over half"), and "ago" after a duration."""
    out = []
    for span in spans:
        start, end = span.start, span.end
        if m := _QUALIFIER.search(sentence[max(0, start - 20):start]):
            start -= len(m.group(0))
        if m := re.match(r"\s+ago\b", sentence[end:]):
            end += len(m.group(0))
        out.append(Span(sentence[start:end], start, end))
    return out


# What follows a naming verb ("is known as the Miasma theory", "so-called X", "wird als X bezeichnet"),
# or a parenthesis ("rotors (rotating discs)"): up to six words, to the next punctuation.
_TERM_AFTER = re.compile(r"\b(?:known as|called|termed|named|referred to as|described as|dubbed|nicknamed|so-called"
                         r"|genannt|sogenannte[nmrs]?|bekannt als|bezeichnet als|heißt|heisst)\s+(?:(?:also|often|sometimes|\w+ly|auch|oft|meist)\s+)?[\"“„'‘]?"
                         r"((?:[\w-]+\b[\"”“'’]?\s*){1,6}?)(?=[,.;:!?()\"”“]|(?:which|that|who|and|or|because|since|while|wenn|weil|und|oder|der|die|das)\b|$)")
_TERM_BEFORE = re.compile(r"\bals\s+((?:[\w-]+\s+){0,5}?[\w-]+)\s+(?:bezeichnet|genannt)\b")
_TERM_PAREN = re.compile(r"(\w+)\s+\(([^()\d,;:]{3,40})\)")


def _terms(sentence: str, qwords: frozenset[str] | set[str]) -> list[Span]:
    """Names given to something in the sentence; a parenthesis counts only right after a word of
    the question ("rotors (rotating discs)" for "another term for rotors"), not any aside."""
    found = [m.span(1) for rx in (_TERM_AFTER, _TERM_BEFORE) for m in rx.finditer(sentence)]
    found += [m.span(2) for m in _TERM_PAREN.finditer(sentence) if fold(m.group(1)) in qwords]
    out = []
    for a, b in found:
        text = sentence[a:b].strip().strip("\"”“'’ ")
        if text:
            start = sentence.find(text, a)
            out.append(Span(text, start, start + len(text)))
    return out


# An age: "at age 39", "aged 39", "39 years old", "a 39-year-old", "im Alter von 39 Jahren", "39-jährig",
# "mit 39 Jahren".
_AGE = re.compile(r"\b(?:at (?:the )?age(?: of)?|aged|im Alter von)\s+(\d{1,3})\b|\b(\d{1,3})[\s-]+years?[\s-]+old\b"
                  r"|\b(\d{1,3})[\s-]*jährige?[nmrs]?\b|\bmit (\d{1,3}) Jahren\b", re.I)


# How often: "every five years", "twice a year", "22 times", "annually", "alle fünf Jahre", "22-mal",
# "zweimal im Jahr", "jährlich".
_EVERY_UNIT = (r"(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?|decades?|centur(?:y|ies)"
               r"|Jahre?n?|Monate?n?|Wochen?|Tage?n?|Stunden?|Minuten?|Sekunden?|Jahrzehnte?n?|Jahrhunderte?n?)")
_PERIOD = rf"\s+(?:a|an|per|each|every|pro|je|im|in der|am)\s+(?:{_NUMWORD}\s+|\d+\s+)?{_EVERY_UNIT}"  # "a year"
_PER = rf"(?:{_PERIOD})?"
_FREQUENCY = re.compile(
    rf"\b(?:every|each|alle|jede[nsmr]?)\s+(?:(?:other|few|second|third|paar|{_NUMWORD}|\d+)\s+)?{_EVERY_UNIT}\b"
    rf"|(?:\b{_NUMWORD}(?:[\s-]+{_NUMWORD})*|(?<![\w.,])\d+)[\s-]*(?:times|mal)\b{_PER}"
    rf"|\b(?:twice|thrice|zweimal|dreimal|viermal|fünfmal|funfmal|zehnmal|hundertmal){_PER}(?!\w)"
    # "once" / "einmal" only with a period ("once a year"): alone they are conjunctions and particles.
    rf"|\b(?:once|einmal){_PERIOD}(?!\w)"
    r"|\b(?:annually|yearly|monthly|weekly|daily|hourly|biennially|biannually|jährlich|jahrlich|monatlich|wöchentlich"
    r"|wochentlich|täglich|taglich|stündlich|stundlich)\b", re.I)


def candidates(kind: str, sentence: str, german: bool = False, qwords: frozenset[str] | set[str] = frozenset()) -> list[Span]:
    """Spans of the sentence that could answer a question of type `kind`; `qwords`, the question's
    folded words, place a 'term' in a parenthesis ("rotors (rotating discs)")."""
    if kind in ("date", "duration", "number", "frequency"):
        return _qualified(_candidates(kind, sentence, german, qwords), sentence)
    return _candidates(kind, sentence, german, qwords)


def _candidates(kind: str, sentence: str, german: bool, qwords: frozenset[str] | set[str]) -> list[Span]:
    if kind == "date":
        return [Span(m.group(0), m.start(), m.end()) for m in _DATE.finditer(sentence)]
    if kind == "duration":
        return [Span(m.group(0), m.start(), m.end()) for m in _DURATION.finditer(sentence)]
    if kind == "number":
        spans = [Span(m.group(0).strip().rstrip(",."), m.start(), m.start() + len(m.group(0).strip().rstrip(",.")))
                 for m in _NUMBER.finditer(sentence)]
        # Years and other dates are rarely what "how many" asks for.
        dates = [(m.start(), m.end()) for m in _DATE.finditer(sentence)]
        return [s for s in spans if s.text and not any(a <= s.start and s.end <= b for a, b in dates)
                and not re.fullmatch(r"(?:1\d|20)\d{2}", s.text)]
    if kind == "person":  # not an acronym ("US", "NFL"): organisations and countries
        return [p for p in _people(_names(sentence, german)) if not re.fullmatch(rf"[{_UPPER}]{{2,5}}", p.text)]
    if kind in ("name", "place"):
        return _names(sentence, german)
    if kind == "frequency":
        return [Span(m.group(0), m.start(), m.end()) for m in _FREQUENCY.finditer(sentence)]
    if kind == "age":
        return [Span(m.group(g), m.start(g), m.end(g)) for m in _AGE.finditer(sentence) for g in (1, 2, 3, 4) if m.group(g)]
    if kind == "term":
        return _terms(sentence, qwords)
    return []


def _folded_words(text: str) -> set[str]:
    return set(_WORD.findall(fold(text)))


def _initials(words: list[str]) -> str:
    """Folded first letters of the title-case words ("European Union" → "eu"); acronyms, initials
    and linking words add none."""
    return "".join(fold(w[0]) for w in words if w[0].isupper() and not w.isupper() and fold(w) not in _LINKERS)


def _same_acronym(span: str, question: str) -> bool:
    """Whether the span and a name in the question are one name, one of them written as its
    acronym: "European Union" for "EU", "UMC" for "United Methodist Church".

    >>> _same_acronym("European Union", "Does the EU trade?"), _same_acronym("Mongolia", "Does the EU trade?")
    (True, False)
    """
    qwords = _WORD.findall(question)
    acronyms = {fold(w) for w in qwords if 2 <= len(w) <= 6 and w.isupper() and w.isalpha()}
    if _initials(_WORD.findall(span)) in acronyms:
        return True
    if not (span.isupper() and span.isalpha() and len(span) >= 2):
        return False
    # The span is an acronym: is it the initials of a run of the question's capitalised words
    # (its first word, the question word, left out)?
    target, words = fold(span), qwords[1:]
    for i, first in enumerate(words):
        if not first[0].isupper():
            continue
        run = []
        for w in words[i:]:
            if not (w[0].isupper() or fold(w) in _LINKERS):
                break
            run.append(w)
            if _initials(run) == target:
                return True
    return False


def given_name(surname: str, sentences: list[str], question: str) -> str | None:
    """The one given name the sentences write right before `surname` ("Economist Thomas Piketty
    challenged …" → "Thomas"); None when they write none, or several ("Archie Manning's son Peyton
    Manning"). A function word, a title or a word the shipped word lists know ("When Piketty …",
    "Mr Piketty", "Economist Piketty") is no given name, nor is a word of the question.

    >>> given_name("Piketty", ["When Piketty wrote, Economist Thomas Piketty won."], "Who won?")
    'Thomas'
    """
    asked = _folded_words(question)
    before = re.compile(r"(?<![\w’'-])([^\W\d_][^\W\d_’'-]*) " + re.escape(surname) + r"(?![\w-])")
    found = {m.group(1) for sentence in sentences for m in before.finditer(sentence)
             if _could_be_given_name(m.group(1), asked)}
    return found.pop() if len(found) == 1 else None


def _could_be_given_name(word: str, asked: set[str]) -> bool:
    folded = fold(word)
    return (word[0].isupper() and word[1:].islower() and folded not in asked and folded not in _OPENERS
            and folded not in _HONORIFICS and not is_common_word(word))


def antecedent_person(sentence: str, question: str, german: bool = False) -> str | None:
    """The person a following "he" / "she" / "er" most likely means: the first name of two or more
    words the sentence holds that the question does not, and not after a place preposition
    ("Peyton Manning became …" → "Peyton Manning"; not "Broncos", not "in Santa Clara").

    >>> antecedent_person("In Santa Clara, Von Miller sacked Cam Newton.", "Who was named MVP?")
    'Von Miller'
    """
    asked = _folded_words(question)
    for span in candidates("person", sentence, german):
        words = _WORD.findall(span.text)
        prev = sentence[:span.start].split()[-1:]
        if len(words) < 2 or (prev and fold(prev[0]) in _PLACE_PREP) or any(fold(w) in asked for w in words):
            continue
        return span.text
    return None


def best_span(kind: str | None, question: str, sentence: str, german: bool = False,
              margin: float | None = None) -> str | None:
    """The candidate of the expected type nearest the question's words in the sentence, or None.

    With `margin`, a candidate is returned only when it is the only one or beats the runner-up by
    that much: among several names or numbers the nearest is right only about half the time.
    """
    if kind is None:
        return None
    qwords = _folded_words(question)
    # The kind of name asked for, written in lower case in the question ("Which party …?").
    kind_words = ({fold(w) for w in _WORD.findall(question) if w.islower()} & _NAME_HEADS
                  if kind in ("name", "place") else set())
    cands = []
    for span in candidates(kind, sentence, german, qwords):
        words = [w for w in _WORD.findall(fold(span.text)) if w not in _LINKERS]
        if not words or (kind in ("person", "name", "place") and any(w in qwords and w not in kind_words for w in words)):
            continue  # a name the question already holds is not what it asks for
        if kind in ("name", "place") and _same_acronym(span.text, question):
            continue  # … also when one of the two writes it as an acronym ("EU" / "European Union")
        if all(w in qwords for w in words):
            continue
        cands.append(span)
    if not cands:
        return None
    anchors = [(m.start(), m.end()) for m in _WORD.finditer(sentence)
               if fold(m.group(0)) in qwords and len(m.group(0)) > 3]

    def score(span: Span) -> float:
        def gap(a: int, b: int) -> float:
            lo, hi = (b, span.start) if b <= span.start else (span.end, a)
            between = sentence[lo:hi] if hi > lo else ""
            return max(hi - lo, 0) + 25 * len(re.findall(r"[,;:()–]", between))  # a clause boundary lies between

        dist = min((gap(a, b) for a, b in anchors), default=100)
        s = -dist
        prev = sentence[:span.start].split()[-1:]
        if kind == "place" and prev and fold(prev[0]) in _PLACE_PREP:
            s += 40
        if kind in ("person", "name") and len(span.text.split()) > 1:
            s += 15
        return s

    ranked = sorted(cands, key=score, reverse=True)
    if margin is not None and len(ranked) > 1 and score(ranked[0]) - score(ranked[1]) < margin:
        return None
    return ranked[0].text
