"""Admission control: who may ask right now, and where each engine call runs.

A busy server must never make the bot hold more than it can answer in time, so:

- `Gate` admits a question only if its channel and its server have room (questions waiting or
  running, `DISCORD_QUEUE_PER_CHANNEL` / `DISCORD_QUEUE_PER_GUILD`); otherwise the caller gives
  an immediate, quiet "busy" reply. It also keeps the per-user cooldown, and stops admitting
  anything once shutdown starts, while `drained()` waits for the admitted ones to finish.
- `Lanes` runs the blocking engine calls in worker threads (`DISCORD_CONCURRENCY` at a time),
  each under the question's deadline (`DISCORD_ANSWER_TIMEOUT`, well inside the 15 minutes an
  interaction token lives). A call still running after `slow_after` seconds (a slow LLM) moves
  to an overflow lane of the same size, freeing its worker for the questions queued behind it.
  A thread cannot be killed, so a call past its deadline keeps its slot until it really ends:
  at most 2 × DISCORD_CONCURRENCY engine calls ever run at once.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass
class Ticket:
    """One admitted question; `deadline` is on the event loop's clock."""

    guild: int | None
    channel: int | None
    deadline: float
    released: bool = False


class Gate:
    def __init__(self, per_channel: int, per_guild: int, cooldown: float, timeout: float) -> None:
        self.per_channel = per_channel
        self.per_guild = per_guild
        self.cooldown = cooldown
        self.timeout = timeout
        self.closed = False
        self._channel: dict[int | None, int] = {}
        self._guild: dict[int | None, int] = {}
        self._last: dict[int, float] = {}
        self._open = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ----- cooldown ------------------------------------------------------------------------
    def cooldown_left(self, user_id: int) -> float:
        last = self._last.get(user_id)
        if last is None or self.cooldown <= 0:
            return 0.0
        return max(0.0, self.cooldown - (time.monotonic() - last))

    def note_asked(self, user_id: int) -> None:
        if self.cooldown <= 0:
            return
        now = time.monotonic()
        self._last[user_id] = now
        if len(self._last) > 10_000:  # forget users whose cooldown is over
            self._last = {u: t for u, t in self._last.items() if now - t < self.cooldown}

    # ----- queue room ----------------------------------------------------------------------
    def admit(self, guild: int | None, channel: int | None) -> Ticket | None:
        """A ticket if the channel and the server have room, else None (the caller says "busy")."""
        if self.closed:
            return None
        if self._channel.get(channel, 0) >= self.per_channel or self._guild.get(guild, 0) >= self.per_guild:
            return None
        self._channel[channel] = self._channel.get(channel, 0) + 1
        self._guild[guild] = self._guild.get(guild, 0) + 1
        self._open += 1
        self._idle.clear()
        return Ticket(guild, channel, asyncio.get_running_loop().time() + self.timeout)

    def release(self, ticket: Ticket) -> None:
        if ticket.released:
            return
        ticket.released = True
        for counts, key in ((self._channel, ticket.channel), (self._guild, ticket.guild)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
        self._open -= 1
        if self._open == 0:
            self._idle.set()

    @property
    def open_tickets(self) -> int:
        return self._open

    async def drained(self, timeout: float) -> bool:
        """Wait until every admitted question is finished; False if `timeout` ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


class Lanes:
    def __init__(self, workers: int, slow_after: float = 5.0) -> None:
        self.workers = workers
        self.slow_after = slow_after
        self._pool = ThreadPoolExecutor(max_workers=2 * workers, thread_name_prefix="rag-answer")
        self._free_workers = asyncio.Semaphore(workers)
        self._free_overflow = workers

    async def run(self, deadline: float, fn, *args):
        """`fn(*args)` in a worker thread; raises TimeoutError when `deadline` passes first."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(self._free_workers.acquire(), max(0.0, deadline - loop.time()))
        lane = ["worker"]

        def free(_=None) -> None:  # on the loop, when the thread has really finished
            if lane[0] == "worker":
                self._free_workers.release()
            else:
                self._free_overflow += 1

        try:
            fut = loop.run_in_executor(self._pool, fn, *args)
        except BaseException:
            free()
            raise
        fut.add_done_callback(free)
        done, _ = await asyncio.wait({fut}, timeout=max(0.0, min(self.slow_after, deadline - loop.time())))
        if not done and not fut.done() and self._free_overflow > 0:
            self._free_overflow -= 1
            lane[0] = "overflow"
            self._free_workers.release()
        return await asyncio.wait_for(asyncio.shield(fut), max(0.0, deadline - loop.time()))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
