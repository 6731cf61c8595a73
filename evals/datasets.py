"""Readers for the two dataset shapes the harness accepts: a QA JSONL file or a BEIR folder."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: list[str]
    sources: list[str]
    kind: str = ""
    split: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers or self.sources)


@dataclass
class BeirSet:
    folder: Path
    corpus: list[dict]
    queries: dict[str, str]
    qrels: dict[str, set[str]] = field(default_factory=dict)

    def corpus_hash(self) -> str:
        h = hashlib.sha256()
        with open(self.folder / "corpus.jsonl", "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()[:16]


def load_qa(path: Path, split: str | None = None) -> list[QAItem]:
    items = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                item = QAItem(
                    id=str(d.get("id", n)), question=d["question"], answers=list(d.get("answers", [])),
                    sources=list(d.get("sources", [])), kind=d.get("kind", ""), split=d.get("split", ""),
                )
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}:{n}: not a QA record ({err})") from None
            if split in (None, "all") or item.split == split:
                items.append(item)
    return items


def load_beir(folder: Path, split: str = "test") -> BeirSet:
    corpus = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                corpus.append({"id": str(d["_id"]), "title": d.get("title", ""), "text": d.get("text", "")})
    qrels: dict[str, set[str]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader, None)  # header
        for row in reader:
            if len(row) >= 3 and float(row[2]) > 0:
                qrels.setdefault(row[0].strip(), set()).add(row[1].strip())
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            if str(d["_id"]) in qrels:
                queries[str(d["_id"])] = d["text"]
    return BeirSet(folder, corpus, queries, qrels)


def is_beir(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").exists() and (path / "queries.jsonl").exists()
