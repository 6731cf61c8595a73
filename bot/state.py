"""What the bot must remember across restarts, in one SQLite file (`DISCORD_STATE_FILE`).

- `answers`: each posted answer (question, text, citations, backend, time) under a small integer
  id. The 👍/👎 buttons carry that id in their custom_id, so a click days later, after any number
  of restarts, still finds its answer.
- `messages`: every Discord message holding a part of an answer → that answer, so a reply to
  any part of a split answer continues the conversation.
- `answers.parent_id`: the answer a follow-up replied to; walking it gives several turns of history.
- `feedback`: one vote per (answer, user); voting again changes it.
- `meta`: the file's format version and, unless `DISCORD_USER_HASH_KEY` is set, this install's
  random key for user hashes.

Retention (`DISCORD_STATE_DAYS`, default 90; 0 keeps everything): answers older than that are
deleted with their message links and votes, when the bot starts and then at most hourly, so the
file does not grow without bound and users' questions are not kept longer than they serve
follow-ups and feedback. A reply to a pruned answer is answered as a new question; a vote on one
is refused politely. Run `python -m bot export-feedback` before votes age out to keep them.

User ids are stored only as HMAC-SHA256(key, id): without the key nobody can match a hash
against a server's member list (a plain sha256 of an id can be). Keep the key out of the state
file by setting `DISCORD_USER_HASH_KEY`; otherwise it is generated once and kept in `meta`.

SQLite is blocking, so the bot calls these methods through `call()`, which runs them one at a
time on the store's own thread; the CLI (`export-feedback`) calls them directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rag.records import Answer

FORMAT = 1
PRUNE_EVERY_SECONDS = 3600  # a running bot checks for answers past the retention at most this often
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    guild_id INTEGER,
    channel_id INTEGER,
    user_hash TEXT NOT NULL,
    parent_id INTEGER REFERENCES answers(id),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    backend TEXT NOT NULL,
    abstained INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    message_id INTEGER PRIMARY KEY,
    answer_id INTEGER NOT NULL REFERENCES answers(id)
);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    user_hash TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    time TEXT NOT NULL,
    PRIMARY KEY (answer_id, user_hash)
);
"""


class StateError(Exception):
    """The state file cannot be used; the message says why and what to do."""


class UnknownAnswer(Exception):
    """A button points at an answer that is not in the state file (e.g. the file was deleted)."""


@dataclass(frozen=True)
class FeedbackRow:
    time: str
    vote: str
    user: str
    answer_id: int
    question: str
    answer: str
    sources: tuple[str, ...]
    backend: str

    def to_json(self) -> dict:
        return {"time": self.time, "vote": self.vote, "user": self.user, "answer_id": self.answer_id,
                "question": self.question, "answer": self.answer, "sources": list(self.sources),
                "backend": self.backend}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class StateStore:
    def __init__(self, path: Path, user_key: str = "", retention_days: float = 0) -> None:
        self.path = Path(path)
        self._user_key = user_key
        self.retention_days = retention_days  # 0: keep everything (export-feedback, tests)
        self._pruned_at: float | None = None
        self._key: bytes | None = None
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None

    # ----- opening -------------------------------------------------------------------------
    def open(self) -> StateStore:
        """Create or open the file, check its format, settle the user-hash key."""
        with self._lock:
            if self._db is not None:
                return self
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA foreign_keys=ON")
                db.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as err:
                raise StateError(f"cannot open the bot's state file {str(self.path)!r} ({err}); "
                                 "check DISCORD_STATE_FILE and its folder's permissions") from None
            row = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT),))
            elif int(row[0]) > FORMAT:
                db.close()
                raise StateError(f"the state file {str(self.path)!r} was written by a newer version "
                                 f"(format {row[0]}); upgrade the bot or point DISCORD_STATE_FILE elsewhere")
            if self._user_key:
                self._key = self._user_key.encode()
            else:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('user_key', ?)", (secrets.token_hex(32),))
                self._key = bytes.fromhex(db.execute("SELECT value FROM meta WHERE key='user_key'").fetchone()[0])
            self._db = db
        return self

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.open()
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    async def call(self, fn, *args):
        """Run one of this store's methods on its own thread (SQLite must not block the event loop)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bot-state")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # ----- users ---------------------------------------------------------------------------
    def user_hash(self, user_id: int) -> str:
        if self._key is None:
            self.open()
        return hmac.new(self._key, str(int(user_id)).encode(), hashlib.sha256).hexdigest()[:32]

    # ----- answers and conversations -------------------------------------------------------
    def save_answer(self, answer: Answer, user_id: int, guild_id: int | None, channel_id: int | None,
                    parent_id: int | None = None) -> int:
        citations = json.dumps([c.to_json() for c in answer.citations], ensure_ascii=False)
        with self._lock:
            # The parent may have been pruned since the reply was looked up: then this one starts anew.
            cur = self.db.execute(
                "INSERT INTO answers (created, guild_id, channel_id, user_hash, parent_id, question, answer,"
                " citations, backend, abstained)"
                " VALUES (?, ?, ?, ?, (SELECT id FROM answers WHERE id = ?), ?, ?, ?, ?, ?)",
                (_now(), guild_id, channel_id, self.user_hash(user_id), parent_id, answer.question, answer.text,
                 citations, answer.backend, int(answer.abstained)),
            )
            answer_id = int(cur.lastrowid)
        if self._pruned_at is None or time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self.prune()
        return answer_id

    def prune(self, now: datetime | None = None) -> int:
        """Delete answers older than the retention, with their message links and votes; how many.

        A newer follow-up of a deleted answer stays, as the start of its conversation."""
        if not self.retention_days:
            return 0
        cutoff = ((now or datetime.now(timezone.utc)) - timedelta(days=self.retention_days)).isoformat(
            timespec="seconds")
        old = "SELECT id FROM answers WHERE created < ?"  # `created` is UTC ISO 8601: text order is time order
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(f"UPDATE answers SET parent_id = NULL WHERE parent_id IN ({old})", (cutoff,))
                db.execute(f"DELETE FROM messages WHERE answer_id IN ({old})", (cutoff,))
                db.execute(f"DELETE FROM feedback WHERE answer_id IN ({old})", (cutoff,))
                deleted = db.execute("DELETE FROM answers WHERE created < ?", (cutoff,)).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._pruned_at = time.monotonic()
        return deleted

    def link_messages(self, answer_id: int, message_ids: list[int]) -> None:
        with self._lock:
            self.db.executemany("INSERT OR REPLACE INTO messages VALUES (?, ?)",
                                [(int(m), answer_id) for m in message_ids])

    def answer_for_message(self, message_id: int) -> int | None:
        with self._lock:
            row = self.db.execute("SELECT answer_id FROM messages WHERE message_id=?", (int(message_id),)).fetchone()
        return None if row is None else int(row[0])

    def history(self, answer_id: int, turns: int) -> list[tuple[str, str]]:
        """The conversation ending at `answer_id`, oldest turn first, at most `turns` turns."""
        out: list[tuple[str, str]] = []
        with self._lock:
            current: int | None = answer_id
            while current is not None and len(out) < turns:
                row = self.db.execute("SELECT question, answer, parent_id FROM answers WHERE id=?", (current,)).fetchone()
                if row is None:
                    break
                out.append((row[0], row[1]))
                current = row[2]
        return out[::-1]

    # ----- feedback ------------------------------------------------------------------------
    def vote(self, answer_id: int, user_id: int, vote: str) -> str:
        """Record `vote` ('up'/'down'); returns 'new', 'changed' or 'same'."""
        if vote not in ("up", "down"):
            raise ValueError(f"vote must be 'up' or 'down', not {vote!r}")
        user = self.user_hash(user_id)
        with self._lock:
            if self.db.execute("SELECT 1 FROM answers WHERE id=?", (answer_id,)).fetchone() is None:
                raise UnknownAnswer(answer_id)
            row = self.db.execute("SELECT vote FROM feedback WHERE answer_id=? AND user_hash=?", (answer_id, user)).fetchone()
            self.db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?) "
                "ON CONFLICT (answer_id, user_hash) DO UPDATE SET vote=excluded.vote, time=excluded.time",
                (answer_id, user, vote, _now()),
            )
        if row is None:
            return "new"
        return "same" if row[0] == vote else "changed"

    def feedback(self) -> list[FeedbackRow]:
        with self._lock:
            rows = self.db.execute(
                "SELECT f.time, f.vote, f.user_hash, a.id, a.question, a.answer, a.citations, a.backend "
                "FROM feedback f JOIN answers a ON a.id = f.answer_id ORDER BY f.time, a.id"
            ).fetchall()
        return [FeedbackRow(time=r[0], vote=r[1], user=r[2], answer_id=r[3], question=r[4], answer=r[5],
                            sources=tuple(dict.fromkeys(c["source"] for c in json.loads(r[6]))), backend=r[7])
                for r in rows]
