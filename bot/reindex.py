"""`/reindex` runs `python -m rag ingest --json` in a child process.

Embedding thousands of chunks in the bot's own process holds the GIL for long stretches and
stalls the event loop (heartbeats, every other question). A child process keeps the bot
responsive; the index's own lock and atomic snapshot swap keep questions on the old index until
the engine reloads the new one. The child inherits the bot's environment (and so its settings);
`extra_env` only serves callers whose settings were not read from the environment (tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

COMMAND = (sys.executable, "-m", "rag", "ingest", "--json")


@dataclass(frozen=True)
class IngestSummary:
    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_embedded: int
    seconds: float

    def text(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged "
                f"({self.chunks_embedded} chunks embedded in {self.seconds:.1f} s)")


class ReindexFailed(Exception):
    """The child failed; `str()` is for the log (it may name paths), never for users."""


class Reindexer:
    def __init__(self, command: tuple[str, ...] = COMMAND, extra_env: dict[str, str] | None = None) -> None:
        self.command = command
        self.extra_env = extra_env or {}
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None

    async def run(self) -> IngestSummary:
        if self._proc is not None:
            raise ReindexFailed("an ingest started by this bot is still running")
        env = {**os.environ, **self.extra_env} if self.extra_env else None
        self._proc = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env,
        )
        try:
            out, err = await self._proc.communicate()
            code = self._proc.returncode
        finally:
            self._proc = None
        if code != 0:
            detail = err.decode(errors="replace").strip().splitlines()
            raise ReindexFailed(f"ingest exited with {code}: {detail[-1] if detail else 'no message'}")
        try:
            report = json.loads(out.decode().strip().splitlines()[-1])
            return IngestSummary(**{k: report[k] for k in IngestSummary.__dataclass_fields__})
        except (ValueError, IndexError, KeyError, TypeError) as bad:
            raise ReindexFailed(f"ingest printed no usable report ({bad})") from None

    async def stop(self, grace: float = 10.0) -> None:
        """Stop a running ingest (at shutdown); the index keeps its last complete snapshot."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            proc.kill()
