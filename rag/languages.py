"""Per-language word handling: stop words, stemmers, and a cheap guess at a question's language.

Documents carry the language langdetect found at ingest; questions are too short for langdetect
(and importing it costs cold-start time), so `guess_language` counts function words instead: a
German question almost always holds one of "der/die/das/wer/wie/welche/…", an English one
"the/of/who/what/…". The stop word lists follow Snowball's (BSD) for English and German, folded
(lower case, no accents) like every token in the index.

>>> guess_language("Wie viele Punkte gab die Verteidigung ab?"), guess_language("How many points?")
('de', 'en')
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Languages with their own stemmer and stop words; text in any other is tokenized as English.
# Every tokenizer (file index, PostgreSQL postings, the answerer's IDF) asks `stemmer_language`,
# so adding a language here changes all of them together.
SUPPORTED = ("en", "de")

STOPWORDS_EN = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up very
was we were what when where which while who whom whose why will with would you your yours yourself
yourselves many much tell please give take took place said say says according mentioned
""".split())

STOPWORDS_DE = frozenset("""
aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes anderm andern
anders auch auf aus bei bin bis bist da damit dann das dass dasselbe dazu dein deine deinem deinen deiner
dem demselben den denn denselben der derer derselbe derselben des desselben dessen dich die dies diese
dieselbe dieselben diesem diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines einig
einige einigem einigen einiger einiges einmal er es etwas euch euer eure eurem euren eurer fur gegen gewesen
hab habe haben hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer ihres im in
indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes jetzt kann kein keine keinem keinen
keiner keines konnen konnte machen man manche manchem manchen mancher manches mein meine meinem meinen
meiner meines mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne sehr sein seine seinem
seinen seiner seines selbst sich sie sind so solche solchem solchen solcher solches soll sollte sondern
sonst uber um und uns unsere unserem unseren unser unseres unter viel vom von vor wahrend war waren warst
was weg weil weiter welche welchem welchen welcher welches wenn werde werden wie wieder will wir wird wirst
wo wollen wollte wurde wurden zu zum zur zwar zwischen wer wen wem wessen wann warum wieso weshalb wodurch
womit wofur woher wohin worauf woran worin viele vielen welch laut gemass genannt
""".split())

STOPWORDS = STOPWORDS_EN | STOPWORDS_DE
# Words that tell the language apart; shared forms ("in", "so", "was", "die" is English too) are left out.
_MARKERS = {
    "en": frozenset("the of and to is are was were what who whom whose which when where why how did does do "
                    "many much that this with from for by on an".split()),
    "de": frozenset("der die das den dem des und ist sind war wer wen wem wessen welche welcher welches welchen "
                    "wann wo wie warum viele eine einer einem einen ein nicht auf mit von zu fur im zum zur "
                    "hat haben wurde wurden".split()),
}
_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """Casefold and strip accents: 'Neutralität' → 'neutralitat'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def guess_language(text: str) -> str:
    """'en', 'de' or 'und', from function words (and German letters as a tie-breaker)."""
    words = _WORD.findall(fold(text))
    if not words:
        return "und"
    en = sum(w in _MARKERS["en"] for w in words)
    de = sum(w in _MARKERS["de"] for w in words)
    if re.search(r"[äöüß]", text.casefold()):
        de += 0.5
    if en == de:
        return "und"
    return "en" if en > de else "de"


def stemmer_language(language: str | None) -> str:
    """The stemmer a text in `language` gets: its own when SUPPORTED, else English's.

    >>> stemmer_language("de"), stemmer_language("fr"), stemmer_language(None)
    ('de', 'en', 'en')
    """
    return language if language in SUPPORTED else "en"


@functools.lru_cache(maxsize=4)
def stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer("german" if language == "de" else "english")


def stem_words(words: list[str], language: str) -> list[str]:
    return stemmer(stemmer_language(language)).stemWords(words)
