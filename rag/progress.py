"""Progress for long runs: a bar on a terminal, a plain line at a steady interval otherwise.

A bar redrawn with carriage returns is noise in a log file, and silence for 18 minutes looks like
a hang, so off a terminal one background thread prints a line every `interval` seconds (15 by
default, `RAG_PROGRESS_SECONDS`) about the innermost piece of work still running, whether or not
it advanced (a stalled count is news too). The interval runs across phases (chunking, then
embedding, then indexing), so the gap between two lines stays near the interval however short
each phase is. Runs shorter than the interval print nothing. Lines go to stderr, so stdout stays
clean for `--json` and tables.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")
DEFAULT_INTERVAL = 15.0
_interval = DEFAULT_INTERVAL


def configure(interval: float) -> None:
    """Set the line interval for this process (entry points call it from the settings)."""
    global _interval
    _interval = float(interval)


class _Ticker:
    """The one thread that prints lines for whatever work is active, at most every interval."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: list[Progress] = []
        self.last = time.monotonic()
        self.idle_since: float | None = None  # when the last job ended
        self.thread: threading.Thread | None = None

    def add(self, job: Progress) -> None:
        with self.lock:
            now = time.monotonic()
            if not self.active and (self.idle_since is None or now - self.idle_since > job.interval):
                self.last = now  # a new run: its first line comes after a full interval
            self.active.append(job)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="progress", daemon=True)
                self.thread.start()

    def remove(self, job: Progress) -> None:
        with self.lock:
            if job in self.active:
                self.active.remove(job)
                if not self.active:
                    self.idle_since = time.monotonic()

    def printed(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.active:
                    self.thread = None
                    return
                job = self.active[-1]
                due = self.last + job.interval - time.monotonic()
            if due > 0:
                time.sleep(min(due, 0.5))
                continue
            job.emit(job.line())


_ticker = _Ticker()


class Progress:
    """Counted (total given) or open-ended (total None) work; use as a context manager."""

    def __init__(self, total: int | None, desc: str, unit: str = "item", enabled: bool = True,
                 stream: TextIO | None = None, interval: float | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.lines = 0
        self.interval = _interval if interval is None else interval
        self._stream = stream or sys.stderr
        self._start = time.monotonic()
        self._bar = None
        self._ticking = False
        if not enabled:
            return
        if _isatty(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=self._stream)
        else:
            self._ticking = True
            _ticker.add(self)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        if not self.total:
            count = f"{self.done:,} {self.unit}s, " if self.done else ""
            return f"{self.desc}: {count}{_duration(elapsed)} elapsed"
        text = (f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}s "
                f"({100 * self.done / self.total:.0f}%), {_duration(elapsed)} elapsed")
        if 0 < self.done < self.total:
            text += f", about {_duration(elapsed * (self.total - self.done) / self.done)} left"
        return text

    def emit(self, text: str) -> None:
        try:
            print(text, file=self._stream, flush=True)
            self.lines += 1
        except (OSError, ValueError):  # stderr closed or gone: progress is not worth a crash
            _ticker.remove(self)
        _ticker.printed()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._ticking:
            self._ticking = False
            _ticker.remove(self)
            if self.lines:  # the reader saw it going, so say it finished
                took = _duration(time.monotonic() - self._start)
                self.emit(f"{self.desc}: done, {self.done:,} {self.unit}s in {took}" if self.done
                          else f"{self.desc}: done in {took}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], desc: str, unit: str = "item", enabled: bool = True,
          total: int | None = None) -> Iterator[T]:
    """Iterate `items`, reporting progress as they are consumed."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit, enabled) as bar:
        for item in items:
            yield item
            bar.update()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
