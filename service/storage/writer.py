"""The single writer: every database write and recording append goes through one task, in order, off the loop.

One writer keeps SQLite free of lock contention and keeps a call's rows in the order they happened;
batching whatever queued up while the last batch ran keeps it up with many calls. One analysis step is one
item (``step``): its events, with their sequence numbers, and the call row when it changed. A batch is one
transaction; a row the store cannot make or the database refuses is logged and skipped, never the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from service.analysis.wire import CallEvent
from service.storage.backends import CallStore
from service.storage.sql import transient

log = logging.getLogger("callwatch.writer")

MAX_BATCH = 2000
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0


__all__ = ["MAX_BATCH", "Writer", "transient"]

Item = tuple[str, Any] | Callable[[], None] | asyncio.Future[None]


class Writer:
    def __init__(self, store: CallStore) -> None:
        self.store = store
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        """Batches that lost something: rows skipped (see ``store.write``), or all of it."""
        self.written = 0
        self.retries = 0
        self.io_failures = 0
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="callwatch-writer")

    def db(self, op: str, arg: Any) -> None:
        """Any other write: ``("call", call)``, ``("recording", (call_id, path))``; see ``store.write``."""
        self._queue.put_nowait((op, arg))

    def step(self, call_id: str, events: Sequence[tuple[int, CallEvent]], call: dict[str, Any] | None = None) -> None:
        """What one analysis step of ``call_id`` produced, as one item: its events with their sequence numbers,
        and ``call``, the call row, when it changed. An event that arrived in its wire form is a
        ``CallEvent.from_wire``."""
        self._queue.put_nowait(("step", (call_id, list(events), call)))

    def io(self, fn: Callable[[], None]) -> None:
        """Blocking file work (recordings) that must stay in order with the rows that mention it."""
        self._queue.put_nowait(fn)

    async def flush(self) -> None:
        """Returns once everything queued before it is written."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        await done

    async def settle(self, timeout_s: float | None) -> bool:
        """Like ``flush`` for at most ``timeout_s`` (None: no limit), so a stuck database cannot hang the caller.
        False when it gave up waiting; what it waited for is still written later."""
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except TimeoutError:
            return False
        return True

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    async def close(self, timeout_s: float | None = None) -> int:
        """Write what is queued, then stop. Returns how many items were still unwritten when ``timeout_s`` ran
        out (0 when all were written): a database that stopped answering must not keep a worker from exiting."""
        if self._task is None:
            return 0
        left = 0
        settled = await self.settle(timeout_s)
        self._closing = True  # a retry still running gives up, so the thread ends with the process
        if not settled:
            left = self._queue.qsize() + 1  # and the batch the database is stuck on
            log.error("shutdown: the database did not take the last writes within %.0f s; about %d items "
                      "were not stored", timeout_s, left)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        return left

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            work = [b for b in batch if not isinstance(b, asyncio.Future)]
            if work:
                try:
                    await asyncio.to_thread(self._apply, work)
                except Exception:  # a bad batch must not stop every later write
                    self.failures += 1
                    log.exception("writing %d items failed", len(work))
            for b in batch:
                if isinstance(b, asyncio.Future) and not b.done():
                    b.set_result(None)

    def _apply(self, work: list[tuple[str, Any] | Callable[[], None]]) -> None:
        ops: list[tuple[str, Any]] = []
        for item in work:
            if isinstance(item, tuple):
                ops.append(item)
                continue
            if ops:
                self._write(ops)
                ops = []
            try:
                item()
            except OSError as e:  # a full or failing disk loses that file's audio, never the rows around it
                self.io_failures += 1
                if self.io_failures == 1 or self.io_failures % 100 == 0:
                    log.error("recording file work failed (%d times so far): %s", self.io_failures, e)
        if ops:
            self._write(ops)
        self.written += len(work)

    def _write(self, ops: list[tuple[str, Any]]) -> None:
        """``ops`` in one transaction; a batch that had rows skipped counts as a failure (each row is logged)."""
        if self._write_retrying(ops):
            self.failures += 1

    def _write_retrying(self, ops: list[tuple[str, Any]]) -> int:
        """One transaction, retried while the database is away (restarting, unreachable, its disk full): those
        rows were accepted, so they wait rather than being dropped. Retrying a whole transaction is safe
        because a failed one wrote nothing. Returns how many rows the store skipped."""
        delay = RETRY_FIRST_S
        while True:
            try:
                return self.store.write(ops) or 0
            except Exception as e:
                if not transient(e) or self._closing:
                    raise
                self.retries += 1
                if delay == RETRY_FIRST_S:
                    log.warning("the database is unavailable (%s); holding %d writes and retrying", e, len(ops))
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
