"""Durable but cheap persistence of a run's progress: writes batched in time, done off the scoring thread.

A :class:`Flusher` collects what a run has computed (token-cache entries, run-state rows,
per-token chunks) and makes it durable at most once per ``FLUSH_SECONDS`` or ``FLUSH_IMAGES``
images, and at the end, on cancel and on error (``close``); the first item is written at once,
so that a write that cannot succeed (a full or read-only disk) fails before hours of work. The
writes themselves (atomic shard files, JSON lines + one fsync) run on one background thread,
in the order they were submitted, so scoring never waits on fsync; a failed write is raised
on the scoring thread at the next ``add`` or at ``close``. The queue is bounded
(``MAX_PENDING`` flushes), so a slow disk slows scoring down instead of growing memory.

The kill -9 guarantee is the writers' own: each flush writes complete files / complete lines
(a token shard is renamed into place, the per-token chunks of a batch are written before its
row line); what a kill loses is only what was not flushed yet, and a rerun computes it again
with the same fixed batches (identical bits).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Callable

FLUSH_SECONDS = float(os.environ.get("VISBPP_FLUSH_SECONDS", "1.0"))
FLUSH_IMAGES = int(os.environ.get("VISBPP_FLUSH_IMAGES", "4096"))
MAX_PENDING = 4


class BackgroundWriter:
    """One thread running submitted write functions in order; errors come back to the caller."""

    def __init__(self, name: str = "visbpp-writer"):
        self.q: queue.Queue = queue.Queue(maxsize=MAX_PENDING)
        self.error: BaseException | None = None
        self.t = threading.Thread(target=self._loop, name=name, daemon=True)
        self.t.start()

    def _loop(self) -> None:
        while True:
            fn = self.q.get()
            if fn is None:
                return
            if self.error is None:  # after a failure nothing later is written (order matters)
                try:
                    fn()
                except BaseException as e:  # noqa: BLE001 - handed to the scoring thread
                    self.error = e

    def submit(self, fn: Callable[[], None]) -> None:
        self.check()
        self.q.put(fn)

    def check(self) -> None:
        if self.error is not None:
            e, self.error = self.error, None
            raise e

    def close(self, raise_errors: bool = True) -> None:
        """Wait until everything submitted is written; re-raise a write error."""
        if self.t.is_alive():
            self.q.put(None)
            self.t.join()
        if raise_errors:
            self.check()


class Flusher:
    """Buffers items and hands them to ``write(items)`` on the background writer when due.

    ``write`` receives a list of what ``add`` was given since the previous flush, in order.
    """

    def __init__(self, write: Callable[[list], None], seconds: float | None = None, images: int | None = None,
                 writer: BackgroundWriter | None = None):
        self.write = write
        self.seconds = FLUSH_SECONDS if seconds is None else seconds
        self.images = FLUSH_IMAGES if images is None else images
        self.own = writer is None
        self.writer = writer or BackgroundWriter()
        self.items: list = []
        self.n = 0
        self.last = time.monotonic()
        self.first = True   # the first item is written at once: a write that fails, fails early

    def add(self, item, n_images: int = 1) -> None:
        self.writer.check()
        self.items.append(item)
        self.n += n_images
        if self.first or self.n >= self.images or time.monotonic() - self.last >= self.seconds:
            self.first = False
            self.flush()

    def flush(self) -> None:
        if self.items:
            items, self.items, self.n = self.items, [], 0
            self.writer.submit(lambda: self.write(items))
        self.last = time.monotonic()

    def close(self, raise_errors: bool = True) -> None:
        """Flush what is left and wait until it is durable."""
        try:
            self.flush()
        except BaseException:
            if raise_errors:
                raise
        finally:
            if self.own:
                self.writer.close(raise_errors)
