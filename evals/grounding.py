"""How well the groundedness check (rag.grounding) separates supported from unsupported claims.

No LLM is needed: claims are built from the seeds QA set. For each answerable question the
retrieved chunk that holds the answer gives the *supported* claims, and three kinds of
*unsupported* claim are derived from them:

  supported   verbatim      the chunk's sentence holding the answer, cited to that chunk
              paraphrase    the same sentence with every third content word dropped and filler
                            added ("reportedly", "notably"), cited to that chunk
              short         just the answer ("August 9, 2024 [n].")
  unsupported wrong source  the verbatim sentence cited to the best-ranked chunk without the answer
              wrong answer  the sentence with its answer swapped for another question's answer
              wrong number  the sentence with every number changed (+1)
              other sentence  another question's answer sentence, cited to this chunk

Each claim goes through the real Verifier as a one-sentence reply; "accepted" means it would be
shown. Dev split to choose MIN_COVERAGE, test split to report:

    python -m evals.grounding [--dataset evals/seeds_qa.jsonl]
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

KINDS = ("verbatim", "paraphrase", "short", "wrong source", "wrong answer", "wrong number", "other sentence")
SUPPORTED = {"verbatim", "paraphrase", "short"}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def _claims(item: dict, hits, other_answers: list[str], other_sentences: list[str]) -> dict[str, tuple[str, int]]:
    """kind → (claim text, cited source number), for one question."""
    from rag.lexical import content_words

    answers = [a for a in item["answers"] if a]
    gold = next((k for k, h in enumerate(hits, start=1) if h.chunk.source in item["sources"]
                 and any(a.casefold() in h.chunk.text.casefold() for a in answers)), None)
    if gold is None:
        return {}
    chunk = hits[gold - 1].chunk
    answer = next(a for a in answers if a.casefold() in chunk.text.casefold())
    sentence = next((s.strip() for s in chunk.sentence_texts() if answer.casefold() in s.casefold()), None)
    if not sentence:
        return {}
    out = {"verbatim": (sentence, gold), "short": (f"{answer}.", gold)}
    words = sentence.split()
    content = set(content_words(sentence))
    kept, n = [], 0
    for w in words:
        if set(content_words(w)) & content and answer.casefold() not in w.casefold():
            n += 1
            if n % 3 == 0:
                continue
        kept.append(w)
    out["paraphrase"] = ("Reportedly, " + " ".join(kept).rstrip(".") + ", notably.", gold)
    other = next((k for k, h in enumerate(hits, start=1)
                  if not any(a.casefold() in h.chunk.text.casefold() for a in answers)), None)
    if other is not None:
        out["wrong source"] = (sentence, other)
    swap = next((a for a in other_answers if a.casefold() not in chunk.text.casefold()), None)
    if swap:
        out["wrong answer"] = (re.sub(re.escape(answer), swap, sentence, flags=re.I), gold)
    if re.search(r"\d", sentence):
        out["wrong number"] = (re.sub(r"\d+", lambda m: str(int(m.group()) + 1), sentence), gold)
    unrelated = next((s for s in other_sentences if s not in chunk.text), None)
    if unrelated:
        out["other sentence"] = (unrelated, gold)
    return out


def _answer_sentence(item: dict, engine) -> str | None:
    hits, _, _ = engine.retrieve(item["question"])
    claims = _claims(item, hits, [], [])
    return claims["verbatim"][0] if claims else None


def _accepted(claim: str, n: int, question: str, sources: list[str], threshold: float) -> bool:
    from rag.grounding import Verifier

    v = Verifier(sources, question, min_coverage=threshold)
    v.feed(f"{claim.rstrip('.')} [{n}].")
    v.finish()
    d = v.verdict()
    return d.claims > 0 and d.shown_claims == d.claims


def measure(engine, items: list[dict]) -> dict:
    """split → kind → threshold → (accepted, total)."""
    answerable = [it for it in items if it["answers"]]
    sentences = {it["id"]: _answer_sentence(it, engine) for it in answerable}
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: [0, 0])))
    for i, item in enumerate(answerable):
        hits, _, _ = engine.retrieve(item["question"])
        rotated = answerable[i + 1:] + answerable[:i]  # the other questions, starting after this one
        others = [a for it in rotated for a in it["answers"] if a not in item["answers"]]
        other_sentences = [sentences[it["id"]] for it in rotated if sentences[it["id"]]]
        sources = [f"{h.chunk.title}\n{h.chunk.text}" for h in hits]
        for kind, (claim, n) in _claims(item, hits, others, other_sentences).items():
            for t in THRESHOLDS:
                cell = table[item["split"]][kind][t]
                cell[0] += _accepted(claim, n, item["question"], sources, t)
                cell[1] += 1
    return table


def main(argv: list[str] | None = None) -> int:
    from rag.engine import Engine
    from rag.grounding import MIN_COVERAGE
    from rag.helptext import TOOL_EXIT, make_parser
    from rag.startup import startup

    p = make_parser("python -m evals.grounding", __doc__.split("\n\n")[0].replace("\n", " "), TOOL_EXIT,
                    "documents", "answering", "logging")
    p.add_argument("--dataset", default=str(Path(__file__).with_name("seeds_qa.jsonl")),
                   help="QA file (JSONL with question, answers, split); default: the seed questions")
    args = p.parse_args(argv)
    settings = startup()  # .env and paths as `rag` reads them; a bad value is one line, exit 2
    if settings is None:
        return 2
    items = [json.loads(line) for line in Path(args.dataset).read_text(encoding="utf-8").splitlines() if line.strip()]
    table = measure(Engine(settings), items)
    for split in ("dev", "test"):
        print(f"\n{split}: share of claims accepted, by MIN_COVERAGE (chosen: {MIN_COVERAGE})")
        print(f"{'claim':14} {'n':>3} " + " ".join(f"{t:>5}" for t in THRESHOLDS))
        for kind in KINDS:
            cells = table[split].get(kind)
            if not cells:
                continue
            n = cells[THRESHOLDS[0]][1]
            tag = "+" if kind in SUPPORTED else "-"
            print(f"{tag} {kind:12} {n:>3} " + " ".join(f"{cells[t][0] / n:5.2f}" for t in THRESHOLDS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
