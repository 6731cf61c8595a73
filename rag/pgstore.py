"""The index in PostgreSQL + pgvector: one database that several bot processes read while one ingest writes.

Tables, in one schema (RAG_PG_SCHEMA, default `seedrag`), versioned by `meta.schema_version`:
    meta(key, value)            the manifest (model, dim, chunking, pipeline version, seed_stats…) and a generation
    documents(source, …)        one row per indexed file
    chunks(id, source, …)       text, metadata, sentence offsets, sentence vectors (bytea) and the chunk
                                vector (`vector(dim)`, HNSW index, RAG_PG_HNSW_M / RAG_PG_EF_CONSTRUCTION)
    terms(channel, term, id, df)       vocabulary of both lexical channels with document frequencies
    postings(channel, term_id, segment, chunk_ids, tfs, dls)   the inverted index
    lexstats(channel, n_docs, total_len)   BM25's N and average length
    tombstones(chunk_id)        deleted chunks whose postings wait for the next merge

Why postings are packed arrays: PostgreSQL's own ranking (`ts_rank`) is not BM25, and a row per
(term, chunk) costs ~60 bytes and a full aggregate in SQL per question. Here each term has one row per
segment holding its chunk ids, term frequencies and chunk lengths as little-endian arrays. A
question reads only its own terms' rows (primary-key lookups, never a table scan) and sums BM25 with
numpy using bm25s's formula and the live N, average length and df, so scores equal the file store's.
An ingest appends one segment; deleted chunks become tombstones, masked at query time and dropped
when segments are merged (many segments or many tombstones).

Consistency: a question reads in one REPEATABLE READ READ ONLY transaction; an ingest holds an
advisory lock (one writer at a time) and replaces all changed sources in one transaction, so
readers see each source entirely before or entirely after. A full rebuild loads a fresh schema and
swaps it in by renaming. A lost connection is retried with backoff, then reported as
StoreUnavailable. The URL is shown only with its password masked.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from rag.config import Settings, check_pg_schema
from rag.errors import (
    ConfigError,
    IndexMissing,
    IngestBusy,
    StoreUnavailable,
)
from rag.index import DocEntry, DocInfo, Manifest, StoredChunk, lexical_kinds, top_positive
from rag.languages import SUPPORTED, stemmer_language
from rag.lexical import B, K1, TOKENIZERS, query_tokens  # one BM25 formula for both stores
from rag.records import Chunk

log = logging.getLogger(__name__)

# 2: the HNSW index is over half-precision copies of the vectors (halfvec); older schemas are rebuilt.
SCHEMA_VERSION = 2
CHANNELS = {"bm25": 1, "ngram": 2}
# A chunk with no tokens gets one placeholder (dl = 1), as LexicalIndex.build does; PostgreSQL text
# cannot hold its NUL byte, and no query token can contain \x01.
EMPTY_TOKEN = "\x01empty"
RETRY_DELAYS = (0.2, 0.6, 1.5)
MERGE_SEGMENTS = 24  # merge postings once a channel has more segments than this…
MERGE_TOMBSTONES = 0.1  # …or once this share of its postings belong to deleted chunks
SPARSE_RATIO = 8  # sum BM25 over sorted candidates, not a slot per chunk id, below 1 posting per 8 ids
FLUSH_POSTINGS = 16_000_000  # postings buffered (12 bytes each) before a segment is written
MERGE_BUFFER = 64_000_000  # bytes of merged postings held before they are written


# ----- connections -------------------------------------------------------------------------
def redact(text: str, url: str = "") -> str:
    """`text` with any password (URL userinfo, password=…, or the URL's own) replaced by ***."""
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    text = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.I)
    secret = _password(url)
    return text.replace(secret, "***") if secret else text


def _password(url: str) -> str:
    m = re.match(r"postgres(?:ql)?://[^:/@]*:([^@]*)@", url)
    if m:
        return m.group(1)
    m = re.search(r"[?&]password=([^&]*)", url)
    return m.group(1) if m else ""


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "RAG_STORE_URL points at PostgreSQL but psycopg is not installed; run `pip install -e '.[postgres]'`"
        ) from None
    return psycopg


def _short(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


class Database:
    """Connections to one PostgreSQL index: one per thread (bots answer in worker threads).

    Every call goes through `run`, which reconnects and retries after a lost connection and then
    raises StoreUnavailable with the URL's password masked.
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.store_url
        self.schema = check_pg_schema(settings.pg_schema)  # also for settings built without load_settings
        self.where = redact(self.url)
        self._local = threading.local()
        self._opened: list = []  # every thread's connection, so close() can end them all

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this object opened (in any thread); a later call reconnects."""
        opened, self._opened = self._opened, []
        for conn in opened:
            try:
                conn.close()
            except Exception:  # already gone
                pass

    def unavailable(self, err: BaseException | None) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot reach the PostgreSQL index at {self.where} ({redact(_short(err), self.url)}); "
            "check that the server is running and that RAG_STORE_URL is right"
        )

    def connect(self, read_only: bool = True):
        psycopg = _psycopg()
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5, application_name="seedrag")
        if read_only:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
        return conn

    def writer(self):
        """A read-write connection of its own (the caller closes it), or StoreUnavailable."""
        try:
            return self.connect(read_only=False)
        except _psycopg().OperationalError as err:
            raise self.unavailable(err) from None

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self.connect()
            self._local.vector = False
            self._opened = [c for c in self._opened if not c.closed] + [conn]
        return conn

    def register_vector(self, conn) -> None:
        if not getattr(self._local, "vector", False):
            from pgvector.psycopg import register_vector

            register_vector(conn)
            self._local.vector = True

    def drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already gone
                pass

    def run(self, fn: Callable, transaction: bool = True):
        """fn(conn) in one read-only REPEATABLE READ transaction, retried on a lost connection."""
        psycopg = _psycopg()
        last: Exception | None = None
        for delay in (0.0, *RETRY_DELAYS):
            if delay:
                time.sleep(delay)
            try:
                conn = self._conn()
                if not transaction:
                    return fn(conn)
                with conn.transaction():
                    return fn(conn)
            except psycopg.errors.UndefinedTable:
                raise IndexMissing(f"no index in PostgreSQL schema {self.schema!r} at {self.where}; "
                                   "run `rag ingest` to build one") from None
            except psycopg.OperationalError as err:
                last = err
                log.warning("PostgreSQL at %s: %s; reconnecting", self.where, redact(_short(err), self.url))
                self.drop()
        raise self.unavailable(last)


def _q(schema: str, sql: str) -> str:
    """SQL with {s} replaced by the (validated) schema name."""
    return sql.replace("{s}", f'"{schema}"')


# ----- reading -----------------------------------------------------------------------------
def read_manifest(settings: Settings) -> Manifest | None:
    """The stored manifest, or None when the schema has no index yet."""
    with Database(settings) as db:
        return _read_manifest(db)


def _read_manifest(db: Database) -> Manifest | None:
    def fn(conn):
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{db.schema}".meta',)).fetchone()[0]
        if exists is None:
            return None
        rows = dict(conn.execute(_q(db.schema, "SELECT key, value FROM {s}.meta")).fetchall())
        if "manifest" not in rows:
            return None
        version = rows.get("schema_version")
        if version != SCHEMA_VERSION:
            from rag.errors import IndexIncompatible

            raise IndexIncompatible(
                f"the PostgreSQL index has schema version {version}; this seedrag reads version {SCHEMA_VERSION}",
                "run `rag ingest` to migrate or rebuild it"
            )
        return Manifest.from_json(rows["manifest"], generation=rows.get("generation"))

    return db.run(fn)


class _DocFreqs:
    """df lookups for the answerer's IDF, for one generation; filled by the lexical channel as a side
    effect, so a question usually costs no extra query."""

    def __init__(self, db: Database, channel: int) -> None:
        self.db, self.channel = db, channel
        self.cache: dict[str, int] = {}

    def get(self, token: str, default: int = 0) -> int:
        if token not in self.cache:
            row = self.db.run(lambda conn: conn.execute(
                _q(self.db.schema, "SELECT df FROM {s}.terms WHERE channel = %s AND term = %s"),
                (self.channel, token)).fetchone())
            self.cache[token] = int(row[0]) if row else 0
        return self.cache[token] or default

    def __contains__(self, token: str) -> bool:
        return self.get(token) > 0

    def get_many(self, tokens: list[str]) -> dict[str, int]:
        """The df of each token in one query (rag.spelling asks about hundreds of would-be words
        at once); only the tokens some chunk holds are cached, so the cache stays within the
        vocabulary however many slips are asked about."""
        out = {t: self.cache[t] for t in tokens if t in self.cache}
        rest = [t for t in dict.fromkeys(tokens) if t not in out]
        if rest:
            rows = self.db.run(lambda conn: conn.execute(
                _q(self.db.schema, "SELECT term, df FROM {s}.terms WHERE channel = %s AND term = ANY(%s)"),
                (self.channel, rest)).fetchall())
            found = {term: int(df) for term, df in rows}
            self.cache.update(found)
            out.update({t: found.get(t, 0) for t in rest})
        return out


class _Generation:
    """What one committed ingest (a `generation`) looks like to readers: BM25 statistics, deleted
    chunks, languages and a df cache. A question keeps the one its transaction began with, so a
    concurrent ingest never mixes one generation's tombstones or dfs into another's reads."""

    def __init__(self, db: Database, generation, stats: dict[int, tuple[int, int]], tombstones: np.ndarray,
                 languages: set) -> None:
        self.generation, self.stats, self.tombstones = generation, stats, tombstones
        self.languages = frozenset(languages) - {"und", None}
        self.stemmers = tuple(sorted({stemmer_language(x) for x in languages})) or ("en",)
        self.df = {kind: _DocFreqs(db, CHANNELS[kind]) for kind in CHANNELS}


class PgIndex:
    """The `rag.index.Index` interface over a PostgreSQL schema; safe to share between threads."""

    KEEP_GENERATIONS = 4  # questions still reading older generations while an ingest commits

    def __init__(self, settings: Settings, manifest: Manifest, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database(settings)
        self.manifest = manifest
        self.lexical_kinds = manifest.lexical_kinds
        self.dim = manifest.dim
        self._generations: dict = {}  # generation → _Generation, oldest first
        self._latest: _Generation | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> PgIndex:
        db = Database(settings)
        manifest = _read_manifest(db)
        if manifest is None:
            db.close()
            raise IndexMissing(f"no index in PostgreSQL schema {settings.pg_schema!r} at {db.where}; "
                               "run `rag ingest` to build one")
        index = cls(settings, manifest, db)  # the same connection serves its questions
        index.read(lambda view: None)  # load the statistics now, not in the first question
        return index

    def _current(self) -> _Generation:
        if self._latest is None:
            self.read(lambda view: None)
        return self._latest

    @property
    def num_chunks(self) -> int:
        return self._current().stats.get(CHANNELS["bm25"], (0, 0))[0]

    @property
    def stemmers(self) -> tuple[str, ...]:
        """The stemmers the chunks were tokenized with: a question is stemmed with each of them."""
        return self._current().stemmers

    @property
    def languages(self) -> frozenset[str]:
        return self._current().languages

    def read(self, fn):
        def once(conn):
            self.db.register_vector(conn)
            view = _PgView(self, conn)
            view.begin()
            return fn(view)

        return self.db.run(once)

    def _generation(self, conn, generation, stats: dict[int, tuple[int, int]]) -> _Generation:
        """The state of `generation` as this transaction sees it, loaded once and shared by the
        questions that read it; the newest generation also answers the index-wide properties."""
        with self._lock:
            gen = self._generations.get(generation)
            if gen is None:
                rows = conn.execute(_q(self.db.schema, "SELECT chunk_id FROM {s}.tombstones")).fetchall()
                langs = {r[0] for r in conn.execute(_q(self.db.schema, "SELECT DISTINCT language FROM {s}.documents"))}
                gen = _Generation(self.db, generation, stats,
                                  np.sort(np.array([r[0] for r in rows], dtype=np.int64)), langs)
                self._generations[generation] = gen
                while len(self._generations) > self.KEEP_GENERATIONS:
                    self._generations.pop(next(iter(self._generations)))
            if self._latest is None or _newer(generation, self._latest.generation):
                self._latest = gen
            return gen

    def close(self) -> None:
        self.db.close()

    def documents(self) -> list[DocInfo]:
        rows = self.db.run(lambda conn: conn.execute(_q(self.db.schema,
            "SELECT source, title, date, language, cardinality(chunk_keys) FROM {s}.documents ORDER BY source"
        )).fetchall())
        return [DocInfo(source=r[0], title=r[1], date=r[2], language=r[3], chunks=int(r[4])) for r in rows]

    def document_frequencies(self, kind: str) -> _DocFreqs:
        return self._current().df[kind]


def _newer(a, b) -> bool:
    """Generations are commit times in ns (0 for a schema never committed)."""
    try:
        return int(a) > int(b)
    except (TypeError, ValueError):
        return a != b


def bm25_weights(tf: np.ndarray, dl: np.ndarray, df: int, n_docs: int, avgdl: float) -> np.ndarray:
    """bm25s's Lucene-variant weights (float32), from raw term frequencies and chunk lengths."""
    idf = np.float32(math.log(1 + (n_docs - df + 0.5) / (df + 0.5)))
    tf = tf.astype(np.float32)
    tfc = tf / (K1 * ((1 - B) + B * dl.astype(np.float64) / avgdl) + tf)
    return (idf * tfc).astype(np.float32)


class _PgView:
    """One question's reads, all inside the caller's REPEATABLE READ transaction."""

    def __init__(self, index: PgIndex, conn) -> None:
        self.index, self.conn, self.s = index, conn, index.db.schema

    def begin(self) -> None:
        gen, stats = self.conn.execute(_q(self.s, """
            SELECT (SELECT value FROM {s}.meta WHERE key = 'generation'),
                   (SELECT coalesce(json_object_agg(channel, json_build_array(n_docs, total_len)), '{}')
                    FROM {s}.lexstats),
                   set_config('hnsw.ef_search', %s, true)"""), (str(self.index.settings.pg_ef_search),)).fetchone()[:2]
        self.stats = {int(c): (int(v[0]), int(v[1])) for c, v in stats.items()}
        self.num_chunks = self.stats.get(CHANNELS["bm25"], (0, 0))[0]
        self.gen = self.index._generation(self.conn, gen, self.stats)

    def dense(self, qvec: np.ndarray, k: int):
        q = np.asarray(qvec, dtype=np.float32)
        if k > self.index.settings.pg_ef_search:  # HNSW returns at most ef_search rows
            self.conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(k, 1000)),))
        rows = self.conn.execute(_q(self.s, dense_sql(self.index.dim)), (q, q, k)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        scores = -np.array([r[1] for r in rows], dtype=np.float32)  # full precision, as the file store's
        order = np.lexsort((ids, -scores))
        return ids[order], scores[order]

    def lexical(self, kind: str, text: str, k: int):
        channel = CHANNELS[kind]
        counts = Counter(query_tokens(kind, text, self.gen.stemmers))
        empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        n_docs, total = self.stats.get(channel, (0, 0))
        if not counts or not n_docs:
            return empty
        rows = self.conn.execute(_q(self.s, """
            SELECT t.term, t.df, p.chunk_ids, p.tfs, p.dls FROM {s}.terms t
            LEFT JOIN {s}.postings p ON p.channel = t.channel AND p.term_id = t.id
            WHERE t.channel = %s AND t.term = ANY(%s)"""), (channel, list(counts)),
            binary=True).fetchall()  # binary: posting arrays arrive as raw bytes, not hex text
        df_cache = self.gen.df[kind].cache
        ids_parts, w_parts = [], []
        for term, df, ids_b, tfs_b, dls_b in rows:
            df_cache[term] = int(df)
            if ids_b is None or df <= 0:
                continue
            ids = np.frombuffer(ids_b, dtype="<u4")
            w = bm25_weights(np.frombuffer(tfs_b, dtype="<u2"), np.frombuffer(dls_b, dtype="<u2"),
                             int(df), n_docs, total / n_docs)
            ids_parts.append(ids)
            w_parts.append(w * np.float32(counts[term]))
        for term in counts:
            df_cache.setdefault(term, 0)
        if not ids_parts:
            return empty
        ids = np.concatenate(ids_parts).astype(np.int64)
        weights = np.concatenate(w_parts)
        tomb = self.gen.tombstones
        if len(tomb):
            keep = ~np.isin(ids, tomb, assume_unique=False)
            ids, weights = ids[keep], weights[keep]
        if not len(ids):
            return empty
        if len(ids) * SPARSE_RATIO < int(ids.max()):  # few postings for many chunk ids: number the candidates
            uniq, slots = np.unique(ids, return_inverse=True)
        else:  # one slot per chunk id: no sort
            uniq, slots = None, ids
        scores = np.bincount(slots, weights=weights).astype(np.float32)
        top = top_positive(scores, k)  # ties go to the lower slot, i.e. the lower chunk id, either way
        return (uniq[top] if uniq is not None else top).astype(np.int64), scores[top]

    def chunk_languages(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self.conn.execute(_q(self.s, "SELECT id, language FROM {s}.chunks WHERE id = ANY(%s)"),
                                 (list(ids),)).fetchall()
        return {int(i): lang for i, lang in rows}

    def fetch(self, ids: list[int], qvec: np.ndarray | None) -> list[StoredChunk]:
        if not ids:
            return []
        q = np.asarray(qvec, dtype=np.float32) if qvec is not None else None
        rows = self.conn.execute(_q(self.s, f"""
            SELECT id, key, source, n, text, title, date, language, sentences, sentence_vectors,
                   {'(embedding <#> %s)' if q is not None else '0'}
            FROM {{s}}.chunks WHERE id = ANY(%s)"""), ((q, list(ids)) if q is not None else (list(ids),))).fetchall()
        by_id = {r[0]: r for r in rows}
        out = []
        dim = self.index.dim
        for i in ids:
            r = by_id.get(i)
            if r is None:
                continue
            flat = r[8] or []
            chunk = Chunk(id=r[1], source=r[2], n=r[3], text=r[4], title=r[5], date=r[6], language=r[7],
                          sentences=tuple((flat[j], flat[j + 1]) for j in range(0, len(flat), 2)))
            sv = np.frombuffer(r[9], dtype="<f4").reshape(-1, dim) if r[9] is not None else None
            out.append(StoredChunk(int(i), chunk, -float(r[10]) if q is not None else 0.0, sv))
        return out


# ----- writing -----------------------------------------------------------------------------
def lexical_fingerprint() -> str:
    """Changes when tokenization changes, so stored postings and df are never mixed with new ones."""
    import hashlib

    probe = "Neutralität Tokajew's meetings 2024-08-09 running ran Aschgabat naïve U.S. e-mail Ölpreise"
    stemmed = tuple(sorted(SUPPORTED))  # in this order since the first release: the fingerprint must not move
    tokens = [TOKENIZERS[k](probe, lang) for k in sorted(TOKENIZERS) for lang in stemmed]
    tokens += [query_tokens(k, probe, stemmed) for k in sorted(TOKENIZERS)]
    return hashlib.sha1(repr(tokens).encode()).hexdigest()[:12]


def _tokens(kind: str, text: str, language: str | None) -> list[str]:
    """A chunk's tokens, with its language's stemmer and stop words (as LexicalIndex.build does)."""
    return TOKENIZERS[kind](text, stemmer_language(language)) or [EMPTY_TOKEN]


def _schema_sql(dim: int, settings: Settings) -> str:
    return f"""
    CREATE TABLE {{s}}.meta (key text PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE {{s}}.documents (
        source text PRIMARY KEY, sha256 text NOT NULL, title text NOT NULL, date text,
        language text NOT NULL, chunk_keys text[] NOT NULL);
    CREATE SEQUENCE {{s}}.chunk_ids;
    CREATE SEQUENCE {{s}}.segment_ids;
    CREATE TABLE {{s}}.chunks (
        id bigint PRIMARY KEY, source text NOT NULL, n int NOT NULL, key text NOT NULL, text text NOT NULL,
        title text NOT NULL, date text, language text NOT NULL, sentences int4[] NOT NULL,
        sentence_vectors bytea, embedding vector({int(dim)}) NOT NULL);
    -- Vectors stay in the row (1.5 kB for 384 dimensions): TOASTed out of line, every distance
    -- computed for a result or an exact scan would cost an extra lookup.
    ALTER TABLE {{s}}.chunks ALTER COLUMN embedding SET STORAGE PLAIN;
    CREATE INDEX chunks_source ON {{s}}.chunks (source);
    CREATE TABLE {{s}}.terms (
        channel smallint NOT NULL, term text NOT NULL, id int GENERATED ALWAYS AS IDENTITY UNIQUE,
        df int NOT NULL DEFAULT 0, PRIMARY KEY (channel, term));
    CREATE TABLE {{s}}.postings (
        channel smallint NOT NULL, term_id int NOT NULL, segment int NOT NULL,
        chunk_ids bytea NOT NULL, tfs bytea NOT NULL, dls bytea NOT NULL,
        PRIMARY KEY (channel, term_id, segment));
    ALTER TABLE {{s}}.postings ALTER COLUMN chunk_ids SET STORAGE EXTERNAL,
        ALTER COLUMN tfs SET STORAGE EXTERNAL, ALTER COLUMN dls SET STORAGE EXTERNAL;
    CREATE TABLE {{s}}.lexstats (channel smallint PRIMARY KEY, n_docs bigint NOT NULL, total_len bigint NOT NULL);
    CREATE TABLE {{s}}.tombstones (chunk_id bigint PRIMARY KEY);
    INSERT INTO {{s}}.meta VALUES ('schema_version', '{SCHEMA_VERSION}'), ('generation', '0');
    """


def dense_sql(dim: int) -> str:
    """The k nearest chunks (id, negative inner product) in the HNSW index's own expression, so it serves them."""
    half = f"halfvec({int(dim)})"
    return f"SELECT id, (embedding <#> %s) FROM {{s}}.chunks ORDER BY embedding::{half} <#> %s::{half} LIMIT %s"


def _hnsw_sql(settings: Settings, dim: int) -> str:
    """The HNSW index, over half-precision copies of the vectors (`halfvec`).

    Half the pages of a `vector` index (223 against 391 MiB at 200,000 synthetic chunks of
    evals/synthetic.py), so a million chunks' index fits a modest buffer cache, and a third faster
    to search (ef_search 500: 6.4 against 9.7 ms), at the same recall: the rows it finds are
    re-scored with the full-precision vectors, so scores stay equal to the file store's.
    """
    return (f"CREATE INDEX IF NOT EXISTS chunks_embedding ON {{s}}.chunks "
            f"USING hnsw ((embedding::halfvec({int(dim)})) halfvec_ip_ops) "
            f"WITH (m = {int(settings.pg_hnsw_m)}, ef_construction = {int(settings.pg_hnsw_ef_construction)})")


class _Pending:
    """Postings of chunks added in this transaction, not yet written as a segment: compact arrays
    (12 bytes a posting) with terms numbered locally, so a large load stays small in memory."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.terms, self.ids, self.tfs, self.dls = array("I"), array("I"), array("H"), array("H")
        self.n_docs = self.total_len = 0

    def add(self, chunk_id: int, tokens: list[str]) -> None:
        counts = Counter(tokens)
        vocab = self.vocab
        self.terms.extend(vocab.setdefault(t, len(vocab)) for t in counts)
        self.tfs.extend(min(v, 65535) for v in counts.values())
        self.ids.extend([chunk_id] * len(counts))
        self.dls.extend([min(len(tokens), 65535)] * len(counts))
        self.n_docs += 1
        self.total_len += len(tokens)


class PgWriter:
    """Writes one ingest into a schema inside one transaction on its own connection.

    Use: `with PgWriter.begin(settings, dim, fresh=...) as w: w.delete_sources(...); w.add(...); w.commit(manifest)`.
    `fresh` builds a new schema beside the live one and swaps it in at commit.
    """

    def __init__(self, settings: Settings, conn, schema: str, live: str, fresh: bool, dim: int,
                 ngram_present: bool = True) -> None:
        self.settings, self.conn, self.s, self.live, self.fresh, self.dim = settings, conn, schema, live, fresh, dim
        self.pending = {c: _Pending() for c in CHANNELS.values()}
        self.added = 0
        # The n-gram channel's postings are complete only if the index had them and this ingest
        # keeps adding them; `commit` drops the channel or rebuilds it, as lexical_kinds decides.
        self.ngram_live = ngram_present
        self.languages: set[str] = set()
        self.n_before = 0
        if not fresh:
            self.languages = {r[0] for r in self._x("SELECT DISTINCT language FROM {s}.documents").fetchall()}
            row = self._x("SELECT n_docs FROM {s}.lexstats WHERE channel = 1").fetchone()
            self.n_before = int(row[0]) if row else 0

    @classmethod
    def begin(cls, settings: Settings, dim: int, fresh: bool, ngram_present: bool = True) -> PgWriter:
        db = Database(settings)
        conn = db.writer()
        try:
            _ensure_extension(conn, db)
            live = db.schema
            conn.autocommit = False
            _claim(conn, db, live)  # in this transaction: nobody else's schema is written or dropped
            exists = conn.execute("SELECT to_regclass(%s)", (f'"{live}".chunks',)).fetchone()[0] is not None
            fresh = fresh or not exists
            schema = f"{live}__build" if fresh and exists else live
            from pgvector.psycopg import register_vector

            register_vector(conn)
            if fresh:
                if schema != live:
                    _claim(conn, db, schema)
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{schema}"')
                conn.execute(_q(schema, _schema_sql(dim, settings)))
            return cls(settings, conn, schema, live, fresh, dim, ngram_present=fresh or ngram_present)
        except BaseException:
            conn.close()
            raise

    def __enter__(self) -> PgWriter:
        return self

    def __exit__(self, *exc) -> None:
        if not self.conn.closed:
            try:
                self.conn.rollback()
            finally:
                self.conn.close()

    def _x(self, sql: str, params=None):
        return self.conn.execute(_q(self.s, sql), params)

    def delete_sources(self, sources: Iterable[str]) -> int:
        """Remove these documents and their chunks; their postings become tombstones."""
        sources = list(sources)
        if not sources or self.fresh:
            return 0
        rows = self._x("DELETE FROM {s}.chunks WHERE source = ANY(%s) RETURNING id, text, language",
                       (sources,)).fetchall()
        self._x("DELETE FROM {s}.documents WHERE source = ANY(%s)", (sources,))
        if not rows:
            return 0
        with self.conn.cursor().copy(_q(self.s, "COPY {s}.tombstones (chunk_id) FROM STDIN")) as cp:
            for r in rows:
                cp.write_row((r[0],))
        for kind, channel in CHANNELS.items():
            df: Counter = Counter()
            total = 0
            for _, text, language in rows:
                toks = _tokens(kind, text, language)
                total += len(toks)
                df.update(set(toks))
            self._temp_terms(df)
            self._x("""UPDATE {s}.terms t SET df = t.df - x.d FROM _terms x
                       WHERE t.channel = %s AND t.term = x.term""", (channel,))
            self._x("UPDATE {s}.lexstats SET n_docs = n_docs - %s, total_len = total_len - %s WHERE channel = %s",
                    (len(rows), total, channel))
        return len(rows)

    def _temp_terms(self, counts: Counter) -> None:
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _terms (term text, d int) ON COMMIT DROP")
        self.conn.execute("TRUNCATE _terms")
        with self.conn.cursor().copy("COPY _terms (term, d) FROM STDIN") as cp:
            for term, d in counts.items():
                cp.write_row((term, d))

    def add(self, docs: Mapping[str, DocEntry], chunks: list[Chunk], vectors: np.ndarray,
            sentence_vectors: list[np.ndarray | None]) -> None:
        """Insert documents (source → entry, as the snapshot manifest holds them) and their chunks."""
        if docs:
            with self.conn.cursor().copy(_q(self.s,
                    "COPY {s}.documents (source, sha256, title, date, language, chunk_keys) FROM STDIN")) as cp:
                for source, d in docs.items():
                    cp.write_row((source, d.sha256, d.title, d.date, d.language, list(d.chunk_ids)))
        if not chunks:
            return
        ids = [r[0] for r in self._x("SELECT nextval('{s}.chunk_ids') FROM generate_series(1, %s)",
                                     (len(chunks),)).fetchall()]
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self.conn.cursor().copy(_q(self.s, """COPY {s}.chunks (id, source, n, key, text, title, date, language,
                sentences, sentence_vectors, embedding) FROM STDIN (FORMAT BINARY)""")) as cp:
            cp.set_types(["int8", "text", "int4", "text", "text", "text", "text", "text", "int4[]", "bytea", "vector"])
            for cid, c, vec, sv in zip(ids, chunks, vectors, sentence_vectors):
                flat = [x for pair in c.sentences for x in pair]
                svb = np.ascontiguousarray(sv, dtype="<f4").tobytes() if sv is not None else None
                cp.write_row((cid, c.source, c.n, c.id, c.text, c.title, c.date, c.language, flat, svb, vec))
        self.added += len(chunks)
        self.languages |= {d.language for d in docs.values()}
        if self.ngram_live and "ngram" not in lexical_kinds(self.languages, self.n_before + self.added,
                                                             self.settings.embed_languages):
            self.ngram_live = False  # a large one-language corpus: stop; commit decides (drop or backfill)
            self.pending[CHANNELS["ngram"]] = _Pending()
        for kind, channel in CHANNELS.items():
            if kind == "ngram" and not self.ngram_live:
                continue
            p = self.pending[channel]
            for cid, c in zip(ids, chunks):
                p.add(cid, _tokens(kind, c.text, c.language))
            if len(p.ids) >= FLUSH_POSTINGS:
                self._flush(channel)

    def _flush(self, channel: int) -> None:
        """Write this channel's pending postings as one new segment and count them into df and stats."""
        p = self.pending[channel]
        if not p.ids:
            return
        local = np.frombuffer(p.terms, dtype=np.uint32)
        names = list(p.vocab)
        per_term = np.bincount(local, minlength=len(names))  # postings per term = chunks per term = df increment
        self._temp_terms({names[i]: int(d) for i, d in enumerate(per_term.tolist()) if d})
        self._x("""INSERT INTO {s}.terms (channel, term) SELECT %s, term FROM _terms
                   ON CONFLICT (channel, term) DO NOTHING""", (channel,))
        self._x("""UPDATE {s}.terms t SET df = t.df + x.d FROM _terms x
                   WHERE t.channel = %s AND t.term = x.term""", (channel,))
        term_ids = dict(self._x("""SELECT t.term, t.id FROM {s}.terms t JOIN _terms x ON x.term = t.term
                                   WHERE t.channel = %s""", (channel,)).fetchall())
        global_ids = np.array([term_ids[t] for t in names], dtype=np.int64)
        tid = global_ids[local]
        order = np.argsort(tid, kind="stable")  # chunk ids stay ascending within a term
        tid = tid[order]
        ids = np.frombuffer(p.ids, dtype=np.uint32).astype("<u4")[order]
        tfs = np.frombuffer(p.tfs, dtype=np.uint16).astype("<u2")[order]
        dls = np.frombuffer(p.dls, dtype=np.uint16).astype("<u2")[order]
        starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
        ends = np.r_[starts[1:], len(tid)]
        segment = self._x("SELECT nextval('{s}.segment_ids')").fetchone()[0]
        self._copy_postings((channel, int(tid[a]), segment, ids[a:b].tobytes(), tfs[a:b].tobytes(), dls[a:b].tobytes())
                            for a, b in zip(starts.tolist(), ends.tolist()))
        self._x("""INSERT INTO {s}.lexstats VALUES (%s, %s, %s) ON CONFLICT (channel) DO UPDATE
                   SET n_docs = lexstats.n_docs + excluded.n_docs,
                       total_len = lexstats.total_len + excluded.total_len""",
                (channel, p.n_docs, p.total_len))
        self.pending[channel] = _Pending()

    def set_seed_stats(self, seed_stats: dict | None, skipped: list) -> None:
        import json

        self._x("""UPDATE {s}.meta SET value = value || %s::jsonb WHERE key = 'manifest'""",
                (json.dumps({"seed_stats": seed_stats, "skipped": skipped}),))

    def commit(self, manifest: Manifest) -> int:
        """Flush postings, build the vector index if new, merge segments if due, store the manifest, commit.

        Returns the number of chunks in the index."""
        import json

        for channel in CHANNELS.values():
            self._flush(channel)
        self._x("INSERT INTO {s}.lexstats VALUES (1, 0, 0) ON CONFLICT DO NOTHING")  # even when emptied
        n = self._x("SELECT n_docs FROM {s}.lexstats WHERE channel = 1").fetchone()[0]
        languages = {r[0] for r in self._x("SELECT DISTINCT language FROM {s}.documents").fetchall()}
        kinds = lexical_kinds(languages, int(n), self.settings.embed_languages)
        ngram = CHANNELS["ngram"]
        if "ngram" not in kinds or not self.ngram_live:
            for table in ("postings", "terms", "lexstats"):
                self._x(f"DELETE FROM {{s}}.{table} WHERE channel = %s", (ngram,))
        if "ngram" in kinds and not self.ngram_live:
            self._backfill(ngram, "ngram")
        if "ngram" in kinds:
            self._x("INSERT INTO {s}.lexstats VALUES (%s, 0, 0) ON CONFLICT DO NOTHING", (ngram,))
        manifest = manifest.with_(lexical_kinds=tuple(kinds))
        # Building HNSW once over loaded rows is far faster than growing it row by row.
        mem_mb = int(min(4096, max(64, n * manifest.dim * 4 * 2 / 2**20)))
        self._x(f"SET LOCAL maintenance_work_mem = '{mem_mb}MB'")
        self._x(_hnsw_sql(self.settings, manifest.dim))
        self._maybe_merge()
        self._x("""INSERT INTO {s}.meta VALUES ('manifest', %s::jsonb)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value""", (json.dumps(manifest.to_json()),))
        self._x("UPDATE {s}.meta SET value = to_jsonb(%s::bigint) WHERE key = 'generation'", (time.time_ns(),))
        if self.fresh and self.s != self.live:
            self.conn.execute(f'DROP SCHEMA IF EXISTS "{self.live}" CASCADE')
            self.conn.execute(f'ALTER SCHEMA "{self.s}" RENAME TO "{self.live}"')
        self.conn.commit()
        return int(n)

    def _backfill(self, channel: int, kind: str) -> None:
        """Index every stored chunk into one channel (it was skipped while the corpus was one large
        one-language collection, and is needed now)."""
        cur = self.conn.cursor(name=f"backfill{channel}")
        cur.execute(_q(self.s, "SELECT id, text, language FROM {s}.chunks ORDER BY id"))
        rows = cur.fetchmany(10_000)
        while rows:
            p = self.pending[channel]
            for cid, text, language in rows:
                p.add(cid, _tokens(kind, text, language))
            if len(p.ids) >= FLUSH_POSTINGS:
                self._flush(channel)  # statements between FETCHes of an open cursor are fine
            rows = cur.fetchmany(10_000)
        cur.close()
        self._flush(channel)

    def _maybe_merge(self) -> None:
        """Merge every channel's segments once there are many, or many deleted chunks in them."""
        dead = self._x("SELECT count(*) FROM {s}.tombstones").fetchone()[0]
        live = self._x("SELECT n_docs FROM {s}.lexstats WHERE channel = 1").fetchone()[0]
        segs = self._x("SELECT count(DISTINCT (channel, segment)) FROM {s}.postings").fetchone()[0]
        if segs > MERGE_SEGMENTS * len(CHANNELS) or dead > MERGE_TOMBSTONES * max(live + dead, 1):
            for channel in CHANNELS.values():
                self.merge(channel)
            self._x("TRUNCATE {s}.tombstones")  # no segment lists a deleted chunk any more

    def merge(self, channel: int) -> None:
        """Rewrite a channel's postings as one segment without tombstoned chunks.

        Merged rows are written in batches of about MERGE_BUFFER bytes while the old segments are
        read (the new segment is another key), so a merge at a million chunks holds one batch, not
        the whole channel; the old segments are deleted at the end."""
        tomb = np.array([r[0] for r in self._x("SELECT chunk_id FROM {s}.tombstones").fetchall()], dtype=np.int64)
        segment = self._x("SELECT nextval('{s}.segment_ids')").fetchone()[0]
        cur = self.conn.cursor(name=f"merge{channel}")
        cur.execute(_q(self.s, """SELECT term_id, chunk_ids, tfs, dls FROM {s}.postings WHERE channel = %s
                                  ORDER BY term_id, segment"""), (channel,))
        batch: list[tuple] = []
        size = 0

        def emit(term_id, parts):
            nonlocal size
            ids = np.concatenate([np.frombuffer(x[0], "<u4") for x in parts])
            tfs = np.concatenate([np.frombuffer(x[1], "<u2") for x in parts])
            dls = np.concatenate([np.frombuffer(x[2], "<u2") for x in parts])
            if len(tomb):
                keep = ~np.isin(ids.astype(np.int64), tomb)
                ids, tfs, dls = ids[keep], tfs[keep], dls[keep]
            order = np.argsort(ids, kind="stable")
            if len(ids):
                batch.append((channel, term_id, segment, ids[order].tobytes(), tfs[order].tobytes(),
                              dls[order].tobytes()))
                size += 8 * len(ids)
            if size >= MERGE_BUFFER:
                self._copy_postings(batch)  # between FETCHes of the open cursor
                batch.clear()
                size = 0

        current, parts = None, []
        while rows := cur.fetchmany(2000):
            for term_id, a, b, c in rows:
                if term_id != current and parts:
                    emit(current, parts)
                    parts = []
                current = term_id
                parts.append((a, b, c))
        if parts:
            emit(current, parts)
        cur.close()
        self._copy_postings(batch)
        self._x("DELETE FROM {s}.postings WHERE channel = %s AND segment <> %s", (channel, segment))
        self._x("DELETE FROM {s}.terms WHERE channel = %s AND df <= 0", (channel,))

    def _copy_postings(self, rows: Iterable[tuple]) -> None:
        with self.conn.cursor().copy(_q(self.s, """COPY {s}.postings (channel, term_id, segment, chunk_ids, tfs, dls)
                FROM STDIN (FORMAT BINARY)""")) as cp:
            cp.set_types(["int2", "int4", "int4", "bytea", "bytea", "bytea"])
            for row in rows:
                cp.write_row(row)


@contextlib.contextmanager
def ingest_lock(settings: Settings) -> Iterator[None]:
    """Hold this schema's writer lock (a session advisory lock) or raise IngestBusy at once."""
    db = Database(settings)
    conn = db.writer()
    try:
        if not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"seedrag:{db.schema}",)).fetchone()[0]:
            raise IngestBusy(f"ingest already running on the PostgreSQL index at {db.where} (schema {db.schema}); "
                             "wait for it to finish, then try again")
        _claim(conn, db, db.schema)  # before any document is embedded; PgWriter.begin checks again
        yield
    finally:
        conn.close()  # ends the session, which releases the lock


SEEDRAG_TABLES = ("meta", "documents", "chunks", "terms", "postings", "lexstats", "tombstones")


def _claim(conn, db: Database, schema: str) -> None:
    """Raise ConfigError unless `schema` is missing, empty or a seedrag index (all of seedrag's tables,
    and a schema_version in `meta`): an ingest replaces the whole schema, so it must never be an
    application's."""
    found = conn.execute("SELECT count(to_regclass(format('%%I.%%I', %s::text, t))) FROM unnest(%s::text[]) t",
                         (schema, list(SEEDRAG_TABLES))).fetchone()[0]
    if found == len(SEEDRAG_TABLES) and conn.execute(
            _q(schema, "SELECT 1 FROM {s}.meta WHERE key = 'schema_version'")).fetchone():
        return
    objects = [r[0] for r in conn.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s
        UNION ALL SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s
        UNION ALL SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                  WHERE n.nspname = %s AND t.typrelid = 0 AND t.typelem = 0
        ORDER BY 1 LIMIT 4""", (schema, schema, schema)).fetchall()]
    if objects:
        raise ConfigError(
            f"RAG_PG_SCHEMA={db.schema}: schema {schema} in the database at {db.where} already holds objects that "
            f"are not a seedrag index ({', '.join(objects)}); seedrag replaces its schema whole on a rebuild, so it "
            "leaves this one alone: set RAG_PG_SCHEMA to a schema of seedrag's own (a new name)"
        )


def _ensure_extension(conn, db: Database) -> None:
    psycopg = _psycopg()
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as err:
        raise StoreUnavailable(
            f"the pgvector extension is not available in the database at {db.where} "
            f"({redact(_short(err), db.url)}); install pgvector on the server or have an administrator run "
            "`CREATE EXTENSION vector`"
        ) from None
    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"')


def stored_sources(settings: Settings) -> dict[str, str]:
    """source → sha256 of every indexed document ({} when there is no index)."""
    def fn(conn):
        if conn.execute("SELECT to_regclass(%s)", (f'"{db.schema}".documents',)).fetchone()[0] is None:
            return {}
        return dict(conn.execute(_q(db.schema, "SELECT source, sha256 FROM {s}.documents")).fetchall())

    with Database(settings) as db:
        return db.run(fn)


__all__ = ["PgIndex", "PgWriter", "Database", "read_manifest", "redact", "stored_sources"]
