"""Silence limits for ingest sockets, with one timer for all of them.

A live call sends fifty messages a second; arming and cancelling a timeout around every receive costs a
timer-heap entry each time, which at a few hundred calls is a real share of the processor. Instead each
socket notes when it last heard anything, and one task looks over all of them a few times a second,
cancelling the receive of any socket over its limit. A limit is therefore enforced to within one tick.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

TICK_S = 0.25


class Expired(Exception):
    """The socket heard nothing for ``limit_s``."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"nothing received for {limit_s:g} s")
        self.limit_s = limit_s


class Watched:
    __slots__ = ("task", "last", "limit_s", "waiting", "expired")

    def __init__(self, task: asyncio.Task[object], now: float) -> None:
        self.task = task
        self.last = now
        self.limit_s = float("inf")
        self.waiting = False
        self.expired = False

    async def receive(self, awaitable: Awaitable[T], limit_s: float) -> T:
        """Await one receive; raises Expired if the socket has been silent for ``limit_s``."""
        self.limit_s = limit_s
        self.waiting = True
        try:
            return await awaitable
        except asyncio.CancelledError:
            # Our own cancel, and nobody else's pending: turn it into the timeout. Otherwise it is a real one.
            if self.expired and self.task.uncancel() == 0:
                raise Expired(limit_s) from None
            raise
        finally:
            self.waiting = False
            self.last = asyncio.get_running_loop().time()


class IdleWatch:
    def __init__(self, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self._watched: set[Watched] = set()
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> Watched:
        """Start watching the current task's socket; pair with ``unwatch``."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        w = Watched(task, loop.time())
        self._watched.add(w)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="callwatch-idle-watch")
        return w

    def unwatch(self, w: Watched) -> None:
        self._watched.discard(w)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._watched:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            for w in tuple(self._watched):
                # Only while it waits in ``receive``: a cancel anywhere else would land in the wrong await.
                if w.waiting and not w.expired and now - w.last > w.limit_s:
                    w.expired = True
                    w.task.cancel()
