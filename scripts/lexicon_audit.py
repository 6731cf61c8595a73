"""Check rag/lexicon_en_de.tsv against its rule: the N most frequent English content words of a
general frequency list, plus numbers, dates and units (see the file's header).

Prints the entries outside the rule and the frequent words still missing. Needs `wordfreq` (a
maintainer's tool, not a dependency: pip install wordfreq). Usage:
    python scripts/lexicon_audit.py [N]   (default 10000)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.languages import STOPWORDS_EN, fold, stem_words  # noqa: E402
from rag.lexicon import LEXICON_FILE  # noqa: E402

# Kept whatever their frequency: number words, weekdays, months, seasons, units.
CATEGORY = set("""zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
billion trillion first second third fourth fifth sixth seventh eighth ninth tenth half quarter double triple percent
percentage monday tuesday wednesday thursday friday saturday sunday january february march april may june july
august september october november december spring summer autumn fall winter decade century millennium kilometre
kilometer kilometres kilometers metre meter metres meters centimetre centimeter millimetre millimeter mile miles
foot feet inch inches yard kilogram kilograms gram grams pound pounds ton tons tonne tonnes litre liter gallon acre
hectare degree degrees euro euros dollar dollars mark marks""".split())


def main() -> int:
    from wordfreq import top_n_list

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    top = [w for w in top_n_list("en", 60000) if w.isalpha() and len(w) > 2 and w not in STOPWORDS_EN][:n]
    allowed = set(stem_words(top, "en"))
    entries = [line.split("\t")[0].strip().lower() for line in LEXICON_FILE.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#") and "\t" in line]
    have = set(stem_words(entries, "en"))
    outside = [e for e, s in zip(entries, stem_words(entries, "en")) if e not in CATEGORY and s not in allowed]
    missing = sorted({w for w, s in zip(top, stem_words(top, "en")) if s not in have})
    print(f"{len(entries)} entries; {len(outside)} outside the rule: {' '.join(outside)}")
    print(f"{len(missing)} of the top {n} content words missing (names and slang are left out on purpose): "
          f"{' '.join(missing)}")
    from wordfreq import top_n_list as top_de

    common = {fold(w) for w in top_de("de", 500)}
    generic = [line.split("\t")[0] for line in LEXICON_FILE.read_text(encoding="utf-8").splitlines()
               if "\t" in line and not line.startswith("#")
               and any(fold(f) in common for f in line.split("\t")[1].split("|")[1:])]
    print(f"{len(generic)} entries with a very common German word (top 500) as a further sense: {' '.join(generic)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
