"""Hostile files, races and broken settings: each failure found by trying to break ingest and the CLI.

Real files in temp folders, the real model and FAISS, and `python -m rag` subprocesses wherever
the exit code or a traceback on stderr is what a user would see. Faults a real peer cannot be
made to produce on demand (a file changing in the middle of a read) are injected by wrapping
`os.read`, and they act on real files.
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import load_settings
from rag.engine import Engine
from rag.errors import ConfigError, IngestBusy, IngestFailed
from rag.ingest import ingest_folder, seed_signature
from rag.load import Reader, Skipped, load_documents, scan
from rag.store import LOCK_FILE, load_snapshot
from tests.test_answers import MEETING_Q

SECRET = "The vault combination is 7731-ZEBRA-42."
SECRET_Q = "What is the vault combination?"


def run(settings, *args, env_extra=None, stdin=None, preexec_fn=None, text=True):
    env = {**os.environ, "RAG_SEEDS_DIR": str(settings.seeds_dir), "RAG_INDEX_DIR": str(settings.index_dir),
           "RAG_MODEL_CACHE": str(settings.model_cache), "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=text, env=env,
                          input=stdin, timeout=300, cwd=settings.seeds_dir.parent, preexec_fn=preexec_fn)


def one_clean_line(stderr: str) -> str:
    """The error output must be one line of explanation, never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip() and " WARNING " not in ln and " INFO " not in ln]
    assert len(lines) == 1, stderr
    return lines[0]


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


# ----- size and time ---------------------------------------------------------------------------
def test_a_file_over_the_size_limit_is_skipped_with_a_warning_naming_it(workspace, embedder, caplog):
    big = workspace.seeds_dir / "huge.txt"
    big.write_text("A line about grain exports from Kostanay.\n" * 30_000, encoding="utf-8")  # ~1.2 MB
    report = ingest_folder(workspace.with_(max_file_mb=1.0), embedder=embedder)
    (skip,) = [s for s in report.skipped if s.source == "huge.txt"]
    assert "RAG_MAX_FILE_MB" in skip.reason and "1.2 MB" in skip.reason
    assert "huge.txt" in caplog.text
    assert report.unchanged == 5 and "huge.txt" not in load_snapshot(workspace.index_dir).manifest.documents
    # The skipped file is recorded, so questions do not re-ingest it every time.
    assert not Engine(workspace.with_(max_file_mb=1.0))._index_is_stale()


def test_the_splitter_never_tokenizes_more_than_a_section_of_a_long_document(embedder):
    """SentenceSplitter tokenizes its whole input first: a 50 MB text cost gigabytes and minutes."""
    from rag.chunk import SECTION_CHARS, chunk_document, make_splitter
    from rag.records import SourceDoc

    seen = []

    def counting(text):
        seen.append(len(text))
        return embedder.token_ids(text)

    text = " ".join(f"Sentence {i} mentions the Caspian pipeline and its tariffs." for i in range(6000))
    splitter = make_splitter(200, 40, counting)
    chunks = chunk_document(SourceDoc("long.txt", text, "t", None, "en", "0"), splitter)
    assert max(seen) <= SECTION_CHARS < len(text)
    words = text.split()
    assert " ".join(chunks[0].text.split()[:5]) == " ".join(words[:5])
    assert chunks[-1].text.split()[-1] == words[-1]
    assert all(len(embedder.token_ids(c.text)) <= 200 for c in chunks)


def finishes(script: str, budget_s: int = 120) -> str:
    """Run `script` in a fresh interpreter and return its output; fail if it is still running.

    Not a speed test: every input below takes the linear code a second or less and the
    quadratic code it replaced many minutes to hours, so the budget only separates "ends" from
    "hangs" (and the output says which case did not end).
    """
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=budget_s, cwd=Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired as err:
        done = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        pytest.fail(f"still running after {budget_s} s; cases finished before it:\n{done}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


SENTENCE_CASES = [
    '"." * 300_000',  # a run of end marks: the boundary regex used to restart at every dot
    '"Mr. Smith met Dr. Jones. " * 12_000',  # abbreviations: each check sliced the whole prefix
    '"The meeting took place. " * 12_000',
    '")" * 200_000 + ". x"',
    '"word " * 100_000',  # no punctuation at all
    '"a" * 500_000',  # no spaces at all
]


def test_sentence_splitting_ends_on_long_lines_and_spans_stay_ordered():
    out = finishes(f"""
from rag.sentences import split_sentences
for case in [{", ".join(SENTENCE_CASES)}]:
    spans = split_sentences(case)
    assert spans and all(a < b for a, b in spans), spans[:3]
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    print(len(case), len(spans), flush=True)
""")
    assert len(out.splitlines()) == len(SENTENCE_CASES)


# One line of a few hundred KB (far inside RAG_MAX_FILE_MB) per case, for each reader's format
# cleaning: each used to backtrack quadratically (minutes to hours here), and `rag ask`
# re-ingests before answering, so one such file hung every question and the bot's warm-up.
LONG_LINE_CASES = [
    ("emphasis.md", '"*a " * 100_000'),
    ("strong.md", '"**a " * 75_000'),
    ("code.md", '"`a " * 100_000'),
    ("link.md", '"[" * 300_000'),
    ("heading.md", '"# a" + " " * 300_000 + "b"'),
    ("at-signs.txt", '"@" * 300_000'),
    ("footer.txt", '"press contact" + "\\u2003" * 300_000 + "x"'),
    ("hyphenated.txt", '"a-\\n" * 700_000'),  # each line joins the one before
    ("wrapped.txt", '"and more\\n" * 250_000'),
    ("unclosed.html", '"<p>ab " * 50_000'),  # the parser nests unclosed <p>s
    ("open-tags.html", '"<a b" * 75_000'),  # html.parser looks for each tag's end to the end of the text
    ("open-comments.html", '"<!--" * 200_000'),
]


def test_format_cleaning_ends_on_one_long_line_for_every_format():
    cases = ", ".join(f"({name!r}, {expr})" for name, expr in LONG_LINE_CASES)
    out = finishes(f"""
from rag.load import parse_document
for name, text in [{cases}]:
    try:
        doc = parse_document(name, text.encode())
        print(name, len(doc.text), flush=True)
    except ValueError as err:
        print(name, "skipped:", err, flush=True)
""")
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == [name for name, _ in LONG_LINE_CASES]
    assert not any("skipped" in ln for ln in lines if ln.split()[0].endswith(".md")), out


# ----- containment -----------------------------------------------------------------------------
def test_a_symlink_to_a_file_outside_the_folder_is_skipped_and_never_quoted(workspace, embedder, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "vault.txt").write_text(SECRET, encoding="utf-8")
    (outside / "more.md").write_text(SECRET, encoding="utf-8")
    (workspace.seeds_dir / "vault.txt").symlink_to(outside / "vault.txt")
    (workspace.seeds_dir / "private").symlink_to(outside, target_is_directory=True)
    (workspace.seeds_dir / "passwd.txt").symlink_to("/etc/passwd")
    report = ingest_folder(workspace, embedder=embedder)
    reasons = {s.source: s.reason for s in report.skipped}
    assert {"vault.txt", "private", "passwd.txt"} <= set(reasons)
    assert all("RAG_ALLOW_OUTSIDE_LINKS" in reasons[k] for k in ("vault.txt", "private", "passwd.txt"))
    answer = Engine(workspace).ask(SECRET_Q)
    assert "ZEBRA" not in answer.text and all("vault" not in c.source for c in answer.citations)
    docs = load_snapshot(workspace.index_dir).manifest.documents
    assert not any("passwd" in d or "vault" in d or "private" in d for d in docs)


def test_outside_links_are_followed_when_allowed(workspace, embedder, tmp_path):
    outside = tmp_path / "shared"
    outside.mkdir()
    (outside / "vault.txt").write_text(SECRET, encoding="utf-8")
    (workspace.seeds_dir / "shared").symlink_to(outside, target_is_directory=True)
    allowed = workspace.with_(allow_outside_links=True)
    report = ingest_folder(allowed, embedder=embedder)
    assert report.added == 1 and not report.skipped
    answer = Engine(allowed).ask(SECRET_Q)
    assert answer.citations and answer.citations[0].source == "shared/vault.txt"


def test_links_inside_the_folder_are_followed_once_and_loops_end(workspace, embedder):
    sub = workspace.seeds_dir / "archive"
    sub.mkdir()
    (sub / "note.md").write_text("# Note\n\nThe Aral ferry runs on Thursdays.", encoding="utf-8")
    hidden = workspace.seeds_dir / ".drafts"
    hidden.mkdir()
    (hidden / "plan.md").write_text("# Plan\n\nThe Balkhash bridge opens in May.", encoding="utf-8")
    (workspace.seeds_dir / "latest").symlink_to("archive", target_is_directory=True)  # indexed anyway
    (workspace.seeds_dir / "latest.md").symlink_to("archive/note.md")  # indexed anyway
    (workspace.seeds_dir / "drafts").symlink_to(".drafts", target_is_directory=True)  # only reachable by the link
    (sub / "loop").symlink_to("..", target_is_directory=True)
    report = ingest_folder(workspace, embedder=embedder)
    docs = load_snapshot(workspace.index_dir).manifest.documents
    assert {"archive/note.md", "drafts/plan.md"} <= set(docs)
    assert not {"latest/note.md", "latest.md"} & set(docs)  # no document twice
    assert [s.source for s in report.skipped] == ["archive/loop"]
    assert Engine(workspace).ask("When does the Balkhash bridge open?").citations[0].source == "drafts/plan.md"


def test_a_very_deep_folder_tree_is_walked_without_running_out_of_stack(tmp_path):
    """A tree deeper than the stack allows: here 300 levels under a stack limit lowered to ~150."""
    import inspect

    deep = tmp_path / "docs"
    path = deep / ("d/" * 300)
    path.mkdir(parents=True)
    (path / "bottom.txt").write_text("Found at the bottom of a deep tree.", encoding="utf-8")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 150)
    try:
        found = scan(deep)
    finally:
        sys.setrecursionlimit(limit)
    assert [f.source for f in found.files] == ["d/" * 300 + "bottom.txt"] and not found.skipped


def test_names_that_are_not_utf8_are_skipped_and_every_command_still_works(workspace):
    seeds = os.fsencode(workspace.seeds_dir)
    try:
        fd = os.open(seeds + b"/caf\xe9.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    os.write(fd, b"Undecodable names must not stop the index.")
    os.close(fd)
    os.mkdir(seeds + b"/dossier-\xff")
    with open(seeds + b"/dossier-\xff/inner.txt", "wb") as fh:
        fh.write(b"Inside a folder whose name is not UTF-8.")
    out = run(workspace, "ingest")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "caf\\xe9.txt" in out.stderr and "dossier-\\xff" in out.stderr
    for args in (("ask", MEETING_Q), ("sources",), ("sources", "--json"), ("ask", "--json", MEETING_Q)):
        out = run(workspace, *args)
        assert out.returncode == 0 and "Traceback" not in out.stderr, (args, out.stderr)
    assert "August 9, 2024" in run(workspace, "ask", MEETING_Q).stdout


def test_fifos_and_devices_are_skipped_without_blocking(workspace, embedder):
    os.mkfifo(workspace.seeds_dir / "pipe.txt")
    (workspace.seeds_dir / "zero.txt").symlink_to("/dev/zero")
    report = ingest_folder(workspace.with_(allow_outside_links=True), embedder=embedder)
    reasons = {s.source: s.reason for s in report.skipped}
    assert reasons == {"pipe.txt": "not a regular file", "zero.txt": "not a regular file"}


def test_markup_the_html_parser_rejects_skips_that_file_only(workspace, embedder):
    (workspace.seeds_dir / "broken.html").write_text("<p>The Aral ferry runs on Thursdays.</p><![ x", encoding="utf-8")
    report = ingest_folder(workspace, embedder=embedder)
    assert report.skipped == [Skipped("broken.html", "unreadable HTML (ParserRejectedMarkup)")]
    assert report.unchanged == 5


def test_a_file_swapped_for_a_link_after_the_scan_is_not_followed(workspace, tmp_path):
    """Between listing and reading, a file becomes a link to a private file: it is not opened through it."""
    (tmp_path / "vault.txt").write_text(SECRET, encoding="utf-8")
    found = scan(workspace.seeds_dir)
    victim = found.files[0]
    victim.path.unlink()
    victim.path.symlink_to(tmp_path / "vault.txt")
    reader = Reader(found)
    docs = list(reader.documents())
    assert not any("vault" in d.text for d in docs)
    assert [s.source for s in reader.skipped] == [victim.source]
    assert len(docs) == len(found.files) - 1


def test_a_file_swapped_for_a_fifo_after_the_scan_is_skipped_without_blocking(workspace):
    """Opening a FIFO with no writer waits forever; a file turned into one must not stop the ingest."""
    found = scan(workspace.seeds_dir)
    victim = found.files[0]
    victim.path.unlink()
    os.mkfifo(victim.path)
    reader = Reader(found)
    result: dict = {}
    reading = threading.Thread(target=lambda: result.update(docs=list(reader.documents())), daemon=True)
    reading.start()
    reading.join(120)  # a deadline, not a speed check: without the defence it never ends
    if reading.is_alive():
        os.close(os.open(victim.path, os.O_WRONLY | os.O_NONBLOCK))  # a writer comes and goes: unblocks it
        reading.join(30)
        pytest.fail("reading the seeds folder blocked on a FIFO")
    assert [(s.source, s.reason) for s in reader.skipped] == [(victim.source, "not a regular file")]
    assert len(result["docs"]) == len(found.files) - 1


# ----- files changing while they are read ------------------------------------------------------
@pytest.fixture
def during_read(monkeypatch):
    """Call `action(path)` while `name` is being read (inside os.read), `times` times."""
    real_read = os.read

    def install(name: str, action, times: int = 1):
        calls = {"n": 0}

        def read(fd, n):
            data = real_read(fd, n)
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return data
            if path.endswith("/" + name) and calls["n"] < times:
                calls["n"] += 1
                action(Path(path))
            return data

        monkeypatch.setattr(os, "read", read)
        return calls

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to find which file a descriptor reads")
    return install


def _append(path: Path, text: str = "\n\nAppended while it was read: the ferry now also runs on Mondays.") -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # coarse clocks: make the change visible


def test_a_file_changed_while_read_is_read_again(workspace, embedder, during_read):
    target = workspace.seeds_dir / "004_9ed8f173f51d1787.txt"
    calls = during_read(target.name, _append)
    report = ingest_folder(workspace, embedder=embedder)
    assert calls["n"] == 1 and report.updated == 1
    snap = load_snapshot(workspace.index_dir)
    assert any("also runs on Mondays" in c.text for c in snap.chunks if c.source == target.name)
    st = target.stat()
    assert snap.manifest.seed_stats[target.name] == [st.st_size, st.st_mtime_ns]


def test_a_file_that_keeps_changing_is_indexed_as_read_and_read_again_by_the_next_question(
        workspace, embedder, during_read, caplog):
    target = workspace.seeds_dir / "004_9ed8f173f51d1787.txt"

    def touch(path: Path) -> None:  # rewritten in place, as an editor saving every few milliseconds would
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    during_read(target.name, touch, times=100)
    ingest_folder(workspace, embedder=embedder)
    assert "kept changing" in caplog.text
    recorded = load_snapshot(workspace.index_dir).manifest.seed_stats[target.name]
    assert recorded != [target.stat().st_size, target.stat().st_mtime_ns]
    assert Engine(workspace)._index_is_stale()  # what was recorded is what was read, not the file now


def test_a_file_deleted_while_read_is_not_indexed_and_not_cited(workspace, embedder, during_read):
    target = workspace.seeds_dir / "001_693447a3f6ff537d.txt"
    during_read(target.name, lambda p: p.unlink())
    report = ingest_folder(workspace, embedder=embedder)
    assert Skipped(target.name, "vanished while being read") in report.skipped
    manifest = load_snapshot(workspace.index_dir).manifest
    assert target.name not in manifest.documents and target.name not in manifest.seed_stats
    engine = Engine(workspace)
    assert not engine._index_is_stale()
    assert all(c.source != target.name for c in engine.ask(MEETING_Q).citations)


def test_a_file_changed_after_it_was_read_is_picked_up_by_the_next_question(workspace, embedder, monkeypatch):
    """The index records the version it read: a later change must not look already indexed."""
    import rag.load

    first = workspace.seeds_dir / "000_f95afc1178a02e7b.txt"
    real_clean = rag.load.clean_text
    changed = []

    def clean_and_meanwhile_edit_the_first_file(raw, title_hint=None):
        if "Members of European Parliament" in raw and not changed:  # reading 004, after 000 was read
            _append(first, "\n\nA late correction: the forum moved to the city of Turkestan.")
            changed.append(True)
        return real_clean(raw, title_hint=title_hint)

    monkeypatch.setattr(rag.load, "clean_text", clean_and_meanwhile_edit_the_first_file)
    ingest_folder(workspace, embedder=embedder)
    monkeypatch.undo()
    assert changed
    engine = Engine(workspace)
    assert engine._index_is_stale()
    answer = engine.ask("Where did the forum move to, after the late correction?")
    assert answer.citations[0].source == first.name and "Turkestan" in answer.text


def test_a_file_vanishing_between_listing_and_reading_is_a_warning_not_a_crash(workspace, embedder, monkeypatch):
    import rag.load

    real_read_bytes = rag.load.read_bytes
    gone = workspace.seeds_dir / "003_07e049bc62076820.txt"

    def delete_then_read(f, max_bytes):
        if f.path.name == gone.name:
            gone.unlink()
        return real_read_bytes(f, max_bytes)

    monkeypatch.setattr(rag.load, "read_bytes", delete_then_read)
    report = ingest_folder(workspace, embedder=embedder)
    assert Skipped(gone.name, "vanished before it could be read") in report.skipped
    assert report.removed == 1
    assert gone.name not in seed_signature(workspace.seeds_dir)


# ----- one writer at a time --------------------------------------------------------------------
def _hold_lock(index_dir: Path) -> int:
    fd = os.open(index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_a_second_ingest_says_ingest_already_running(workspace):
    fd = _hold_lock(workspace.index_dir)
    try:
        out = run(workspace, "ingest")
        assert out.returncode == 1
        assert "ingest already running" in one_clean_line(out.stderr)
        with pytest.raises(IngestBusy):
            ingest_folder(workspace)
    finally:
        os.close(fd)
    assert run(workspace, "ingest").returncode == 0  # released with the holder


def test_a_question_during_an_ingest_is_answered_from_the_last_index_with_a_note(workspace):
    (workspace.seeds_dir / "new.md").write_text("# New\n\nThe Khorgos dry port opened a second gate.", encoding="utf-8")
    fd = _hold_lock(workspace.index_dir)
    try:
        out = run(workspace, "ask", "--json", MEETING_Q)
    finally:
        os.close(fd)
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert "August 9, 2024" in data["answer"]
    assert any("answered from the last index" in n and "ingest already running" in n for n in data["notes"])


def test_pruning_spares_a_temp_folder_still_being_written_and_removes_abandoned_ones(workspace, embedder):
    snaps = workspace.index_dir / "snapshots"
    live, dead, old = snaps / ".tmp-live", snaps / ".tmp-dead", snaps / ".tmp-old"
    for d in (live, dead, old):
        d.mkdir()
    (dead / ".writer.lock").touch()
    (old / "vectors.npy").touch()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    holder = subprocess.Popen(  # another process, writing `live` right now
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)", str(live / ".writer.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        path = workspace.seeds_dir / "000_f95afc1178a02e7b.txt"
        path.write_text(path.read_text(encoding="utf-8") + "\n\nOne more paragraph.", encoding="utf-8")
        ingest_folder(workspace, embedder=embedder)
        assert live.exists() and not dead.exists() and not old.exists()
    finally:
        holder.kill()
        holder.wait()


# ----- failures while writing: one line, and the old index keeps answering ---------------------
def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG, like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full_during_the_snapshot_write_fails_soft(workspace):
    before = load_snapshot(workspace.index_dir).folder
    (workspace.seeds_dir / "new.md").write_text("# Port\n\nThe Aktau port handled 6 million tonnes.", encoding="utf-8")
    full = _file_size_limit(64 * 1024)
    out = run(workspace, "ingest", preexec_fn=full)
    assert out.returncode == 1
    line = one_clean_line(out.stderr)
    assert "could not write the index" in line and "disk space" in line and "unchanged" in line
    assert load_snapshot(workspace.index_dir).folder == before
    assert not [p for p in (workspace.index_dir / "snapshots").iterdir() if p.name.startswith(".tmp")]
    out = run(workspace, "ask", "--json", MEETING_Q, preexec_fn=full)  # the automatic ingest fails the same way
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert "August 9, 2024" in data["answer"]
    assert any("answered from the last index" in n and "could not write" in n for n in data["notes"])
    out = run(workspace, "ask", "How many tonnes did the Aktau port handle?")  # space again: it catches up
    assert out.returncode == 0 and "6 million" in out.stdout


def test_an_index_location_that_cannot_be_created_is_one_line_from_every_command(workspace, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for where in (Path("/proc/rag-hostile-test/index"), blocker / "index"):
        bad = workspace.with_(index_dir=where)
        for args in (("ingest",), ("ask", MEETING_Q), ("sources",)):
            out = run(bad, *args)
            assert out.returncode == 1, (where, args, out.stderr)
            assert "RAG_INDEX_DIR" in one_clean_line(out.stderr)
        with pytest.raises(IngestFailed):
            ingest_folder(bad)


def test_an_index_location_that_is_a_file_is_a_bad_setting(workspace, tmp_path):
    blocker = tmp_path / "index-file"
    blocker.write_text("x")
    out = run(workspace.with_(index_dir=blocker), "ask", MEETING_Q)
    assert out.returncode == 2 and "RAG_INDEX_DIR" in one_clean_line(out.stderr)


# ----- settings checked at start ---------------------------------------------------------------
@pytest.mark.parametrize("var, value", [
    ("RAG_MIN_CONFIDENCE", "nan"), ("RAG_MIN_CONFIDENCE", "inf"), ("RAG_MIN_CONFIDENCE", "1.5"),
    ("RAG_FAISS_INDEX", "NotAFactory"), ("RAG_FAISS_INDEX", "PQ7"),
    ("RAG_EMBED_MODEL", "/no/such"), ("RAG_EMBED_MODEL", "no-such-org/no-such-model"),
    ("RAG_LLM_TEMPERATURE", "5"), ("RAG_LLM_TEMPERATURE", "nan"), ("RAG_LLM_TIMEOUT", "nan"),
    ("RAG_LLM_TIMEOUT", "-inf"), ("RAG_LLM_BASE_URL", "http://"), ("RAG_LLM_BASE_URL", "http://host:99999/v1"),
    ("RAG_LLM_BASE_URL", "ftp://example.org"), ("RAG_TOP_K", "1e9"), ("RAG_MAX_FILE_MB", "nan"),
    ("DISCORD_COOLDOWN_SECONDS", "inf"), ("RAG_ALLOW_OUTSIDE_LINKS", "maybe"),
])
def test_bad_settings_are_refused_at_start_naming_the_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        load_settings({var: value})


@pytest.mark.parametrize("var, value", [
    ("RAG_MIN_CONFIDENCE", "nan"), ("RAG_FAISS_INDEX", "NotAFactory"), ("RAG_EMBED_MODEL", "/no/such"),
    ("RAG_LLM_BASE_URL", "http://"),
])
def test_bad_settings_exit_2_from_the_cli_without_a_traceback(built, var, value):
    out = run(built, "ask", MEETING_Q, env_extra={var: value})
    assert out.returncode == 2
    assert var in one_clean_line(out.stderr)


def test_every_faiss_example_in_env_example_works_on_a_small_corpus(workspace, embedder):
    text = (Path(__file__).parents[1] / ".env.example").read_text(encoding="utf-8")
    examples = [line for line in text.splitlines() if "FAISS" in line and line.startswith("#")]
    specs = {"Flat", "HNSW32", "IVF1024,Flat"}
    assert all(any(s in line for line in examples) for s in specs), examples
    for spec in sorted(specs):
        report = ingest_folder(workspace.with_(faiss_index=spec), embedder=embedder, rebuild=True)
        assert bool(report.notes) == spec.startswith("IVF")  # too few chunks to train: exact search, said so
        answer = Engine(workspace.with_(faiss_index=spec)).ask(MEETING_Q)
        assert answer.text.startswith("August 9, 2024"), spec


def test_ivf_on_a_small_corpus_from_the_cli(workspace):
    out = run(workspace, "ingest", "--rebuild", "--json", env_extra={"RAG_FAISS_INDEX": "IVF1024,Flat"})
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "exact search" in strict_json(out.stdout)["notes"][0]


def test_every_value_in_env_example_is_accepted():
    from dotenv import dotenv_values

    values = dotenv_values(Path(__file__).parents[1] / ".env.example")
    load_settings({k: v for k, v in values.items() if v is not None})


# ----- clean text out --------------------------------------------------------------------------
def test_a_question_that_is_not_utf8_is_answered(built):
    env = {**os.environ, "RAG_SEEDS_DIR": str(built.seeds_dir), "RAG_INDEX_DIR": str(built.index_dir),
           "HF_HUB_OFFLINE": "1"}
    question = MEETING_Q.encode() + b" \xff\xfe\xc3"
    out = subprocess.run([sys.executable, "-m", "rag", "ask", question], capture_output=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert b"Traceback" not in out.stderr and b"August 9, 2024" in out.stdout
    out = subprocess.run([sys.executable, "-m", "rag", "ask", "--json", question], capture_output=True, env=env,
                         timeout=300)
    assert "\ufffd" in strict_json(out.stdout.decode("utf-8"))["question"]


def test_the_repl_survives_bad_input(built):
    lines = b"\xff\xfe\xfd\n" + b"\x1b[2J\x00\x07\n" + b":docs\n" + MEETING_Q.encode() + b"\n"
    # A UTF-8 locale decodes stdin strictly; the C locale smuggles bad bytes in as lone surrogates.
    for io_encoding in ("utf-8:strict", "utf-8:surrogateescape"):
        out = run(built, "repl", stdin=lines, text=False, env_extra={"PYTHONIOENCODING": io_encoding})
        assert out.returncode == 0, out.stderr
        assert b"Traceback" not in out.stderr
        assert b"August 9, 2024 [1]" in out.stdout and b"\x1b" not in out.stdout


def test_terminal_escapes_in_documents_are_never_printed(workspace):
    (workspace.seeds_dir / "evil.txt").write_text(
        "\x1b]0;owned\x07\x1b[2JThe Shymkent refinery \x1b[8mhidden\x1b[0m processed 6 million tonnes of oil.\x9b31m",
        encoding="utf-8")
    for args in (("ask", "How much oil did the Shymkent refinery process?"), ("sources",),
                 ("ask", "--json", "How much oil did the Shymkent refinery process?"), ("sources", "--json")):
        out = run(workspace, *args, text=False)
        assert out.returncode == 0, out.stderr
        assert not any(c in out.stdout for c in (b"\x1b", b"\x07", b"\xc2\x9b")), (args, out.stdout)
        if args[0] == "ask" and args[1] != "--json":
            assert b"The Shymkent refinery hidden processed 6 million tonnes" in out.stdout  # text kept


def test_output_stream_strips_escapes_from_any_text(capsys):
    import io

    from rag.cli import SafeWriter

    buf = io.StringIO()
    print("answer \x1b[2J\x1b]0;t\x07text\u202e\r", file=SafeWriter(buf))
    assert buf.getvalue() == "answer text\n"


def test_a_closed_output_pipe_ends_quietly(built):
    env = {**os.environ, "RAG_SEEDS_DIR": str(built.seeds_dir), "RAG_INDEX_DIR": str(built.index_dir),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rag", "sources", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # like `| head -1` having exited before the output comes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["sources", "--json"], ["ask", MEETING_Q], ["--version"]])
def test_output_that_cannot_be_written_is_one_line_not_a_bug_report(built, args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "rag", *args], stdout=full, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "RAG_SEEDS_DIR": str(built.seeds_dir),
                                   "RAG_INDEX_DIR": str(built.index_dir), "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert proc.returncode == 1
    assert one_clean_line(proc.stderr) == "error: cannot write the output (No space left on device)"


def test_closed_standard_streams_are_handled(built):
    env = {**os.environ, "RAG_SEEDS_DIR": str(built.seeds_dir), "RAG_INDEX_DIR": str(built.index_dir),
           "HF_HUB_OFFLINE": "1"}
    no_stdout = subprocess.run([sys.executable, "-m", "rag", "sources"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env, timeout=300,
                               preexec_fn=lambda: os.close(1))
    assert no_stdout.returncode == 1
    assert one_clean_line(no_stdout.stderr) == "error: cannot write the output: standard output is closed"
    no_stdin = subprocess.run([sys.executable, "-m", "rag", "repl"], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, env=env, timeout=300, preexec_fn=lambda: os.close(0))
    assert (no_stdin.returncode, no_stdin.stderr) == (0, "")


def test_json_stays_valid_when_stored_vectors_hold_nan(workspace):
    import faiss

    folder = load_snapshot(workspace.index_dir).folder
    for name in ("vectors.npy", "sentences.npy"):
        vectors = np.load(folder / name)
        vectors[:] = np.nan
        np.save(folder / name, vectors)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.load(folder / "vectors.npy"))
    faiss.write_index(index, str(folder / "faiss.index"))
    out = run(workspace, "ask", "--json", MEETING_Q)
    assert out.returncode == 0, out.stderr
    data = strict_json(out.stdout)
    assert data["confidence"] is None or any(c["score"] is None for c in data["citations"])


def test_scan_reports_links_and_names_without_logging(tmp_path, caplog):
    """The staleness check on every question scans quietly; only ingest warns."""
    (tmp_path / "a.txt").write_text("Some text.")
    (tmp_path / "out.txt").symlink_to("/etc/hostname")
    found = scan(tmp_path)
    assert [f.source for f in found.files] == ["a.txt"] and [s.source for s in found.skipped] == ["out.txt"]
    assert not caplog.records
    docs, skipped = load_documents(tmp_path)
    assert [s.source for s in skipped] == ["out.txt"] and "out.txt" in caplog.text
