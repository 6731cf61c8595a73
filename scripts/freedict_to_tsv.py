"""Convert an installed FreeDict English→German dictionary into a word list for RAG_LEXICON_FILES.

FreeDict's eng-deu data is GPL, so seedrag does not ship it; on Debian/Ubuntu
`apt-get install dict-freedict-eng-deu` puts it on this machine, and this script writes the
one-word headwords with up to six one-word translations in seedrag's word-list format:

    python scripts/freedict_to_tsv.py ~/.local/share/seedrag/freedict_en_de.tsv
    RAG_LEXICON_FILES=~/.local/share/seedrag/freedict_en_de.tsv

Measured on XQuAD xl dev (English questions over German text): answer contains gold 0.55 → 0.70
(README "Known limits").
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

SOURCE = Path("/usr/share/dictd/freedict-eng-deu.dict.dz")
_HEAD = re.compile(r"^(\S.*?) /[^/]+/(?:\s*<[^>]*>)*\s*$")  # "monastery /mˈɒnastəɹi/"
_NOTES = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)|\{[^}]*\}")  # [relig.] <neut> (Mann) {see}


def convert(text: str, per_word: int = 6) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    head = None
    for line in text.split("\n"):
        if m := _HEAD.match(line):
            word = m.group(1).strip().lower()
            head = word if word.isalpha() else None
            continue
        if head is None or not line or line[0].isspace():
            continue
        for part in _NOTES.sub(" ", line).split(","):
            words = part.strip().split(";")[0].split()
            if len(words) == 1 or (len(words) == 2 and words[0].lower() in ("der", "die", "das", "sich")):
                german = words[-1]
                found = out.setdefault(head, [])
                if german[:1].isalpha() and len(german) > 1 and german not in found and len(found) < per_word:
                    found.append(german)
        head = None  # only the line right after the headword holds its translations
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not SOURCE.is_file():
        print(f"{SOURCE} not found: apt-get install dict-freedict-eng-deu", file=sys.stderr)
        return 1
    table = convert(gzip.open(SOURCE).read().decode("utf-8"))
    out = Path(sys.argv[1]).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# FreeDict eng-deu (GPL), converted by seedrag's scripts/freedict_to_tsv.py from {SOURCE}"]
    lines += [f"{en}\t{'|'.join(de)}" for en, de in sorted(table.items()) if de]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines) - 1} entries to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
