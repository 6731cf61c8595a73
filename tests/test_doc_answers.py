"""Answers from documentation, where facts sit in list items and lines without a full stop
(review 3, #18): a real Markdown folder, real ingest, the real bundled model."""

import pytest

README = """# Orbitdb

Orbitdb is a small key-value server for teams that want one binary and no cluster.

## Configuring the server

- The default port is 5432 for the server
- Backups run every night at 02:00 UTC
- Fast startup
- Written in Rust
- A single binary without any cluster

## Running the server behind a reverse proxy

Put nginx or Caddy in front and forward the client address.

## Storage

Snapshots are written to the data folder every ten minutes and old ones are deleted after a week.

Log files are kept for 14 days before rotation

## Upgrades

Upgrading from version 2 rewrites the data folder and takes about twenty minutes for
ten million keys. The
"safe mode" flag keeps a copy of the old folder until the new one has been checked.
Setext heading
--------------
Clients reconnect on their own after a restart.
"""

FAQ = """# Frequently asked questions

## Does Orbitdb support replication?

## Version 3.2 release notes for server operators

Replication to a second server arrived in version 3.2 and needs a shared secret on both machines.

## Who maintains Orbitdb?

The Orbitdb project is maintained by a group of volunteers from three universities.
"""

HEADINGS = ("Setext heading", "Upgrades", "Orbitdb", "Configuring the server", "Storage", "Fast startup", "Written in Rust",
            "A single binary without any cluster", "Running the server behind a reverse proxy",
            "Frequently asked questions", "Version 3.2 release notes for server operators")


@pytest.fixture(scope="module")
def docs(tmp_path_factory, built):
    from rag.engine import Engine
    from rag.ingest import ingest_folder

    base = tmp_path_factory.mktemp("docs")
    (base / "seeds").mkdir()
    (base / "seeds" / "README.md").write_text(README, encoding="utf-8")
    (base / "seeds" / "FAQ.md").write_text(FAQ, encoding="utf-8")
    settings = built.with_(seeds_dir=base / "seeds", index_dir=base / "index")
    ingest_folder(settings)
    return Engine(settings)


def _quoted(answer) -> list[str]:
    """The sentences an answer quotes, without their citation markers."""
    import re

    return [q.strip() for q in re.split(r"\s*\[\d+\]\s*", answer.text) if q.strip()]


@pytest.mark.parametrize("question, fact", [
    ("What is the default port of the Orbitdb server?", "The default port is 5432 for the server"),
    ("When do the Orbitdb backups run?", "Backups run every night at 02:00 UTC"),
    ("How long are Orbitdb log files kept?", "Log files are kept for 14 days before rotation"),
])
def test_a_fact_in_a_list_item_or_an_unpunctuated_line_is_quoted_with_its_citation(docs, question, fact):
    a = docs.ask(question)
    assert not a.abstained, a.text
    assert fact in _quoted(a), a.text
    assert "- " + fact not in a.text, "the list marker is not quoted"
    assert a.citations[0].source == "README.md" and fact in a.citations[0].snippet


@pytest.mark.parametrize("question", [
    "Does Orbitdb have a fast startup?",
    "What language is Orbitdb written in?",
    "How do I configure the Orbitdb server?",
    "Is Orbitdb a single binary without a cluster?",
    "How do I run the Orbitdb server behind a reverse proxy?",
    "What changed in the Orbitdb version 3.2 release for server operators?",
    "Does Orbitdb support replication?",
])
def test_headings_and_bullet_stubs_are_never_the_answer(docs, question):
    a = docs.ask(question)
    quoted = _quoted(a)
    for heading in HEADINGS + ("Does Orbitdb support replication?", "Who maintains Orbitdb?"):
        assert heading not in quoted, a.text


def test_a_hard_wrapped_markdown_paragraph_is_quoted_as_whole_sentences(docs):
    """Markdown joins the lines of a paragraph whatever case the next one starts with: a wrap
    before a capital, a number or a quote is not the end of a sentence."""
    a = docs.ask("How long does upgrading Orbitdb from version 2 take?")
    assert not a.abstained, a.text
    assert ("Upgrading from version 2 rewrites the data folder and takes about twenty minutes for "
            "ten million keys.") in _quoted(a), a.text
    a = docs.ask("What does the safe mode flag of Orbitdb keep?")
    assert not a.abstained, a.text
    assert any(q.startswith('The "safe mode" flag keeps a copy') for q in _quoted(a)), a.text
