"""The event bus between workers: alerts, transcripts, call events and listen-in audio, by channel name.

One worker ingests a call; the screens watching it may be connected to any worker. Every worker publishes
what its calls produce and subscribes to what its screens need, and the bus carries it across. One worker
alone needs no bus (``service.fanout.hub.Hub``); ``service.fanout.redis_bus.RedisBus`` spans machines.

Delivery is at most once, in order per publisher, and never makes a publisher wait: ``publish`` is a plain
function that queues and returns, because it is called from the per-call audio path. A subscriber that falls
``queue_size`` messages behind loses the newest ones (counted in ``dropped``) rather than slowing every
other subscriber down; screens that missed something refetch it over REST, as after any reconnect.

Channel names are dotted (``callwatch.events``, ``callwatch.audio.<call_id>``); subscriptions take Redis
glob patterns (``callwatch.audio.*``). A pattern without wildcards is an exact channel, and only those are
counted by ``subscribers`` (which is what Redis can count across workers).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

Payload = bytes | dict[str, Any]
GLOB_CHARS = frozenset("*?[")
DEFAULT_QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    data: Payload


def is_pattern(pattern: str) -> bool:
    return any(c in GLOB_CHARS for c in pattern)


def encode(data: Payload) -> bytes:
    """One tag byte says whether the rest is JSON or raw bytes: audio frames can start with any byte."""
    if isinstance(data, bytes | bytearray | memoryview):
        return b"b" + bytes(data)
    return b"j" + json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def decode(raw: bytes) -> Payload:
    tag, body = raw[:1], raw[1:]
    if tag == b"b":
        return body
    if tag == b"j":
        value = json.loads(body)
        if isinstance(value, dict):
            return value
    raise ValueError(f"not a callwatch bus message (tag {tag!r})")


class Subscription:
    """An async iterator of ``Message``; ends after ``close()`` (or the bus's)."""

    def __init__(self, pattern: str, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.pattern = pattern
        self.exact = not is_pattern(pattern)
        self.dropped = 0
        self.closed = False
        self.active = True
        """Receiving: always in-process; over Redis, False while its connection is being re-established."""
        self.reconnects = 0
        """How many times its connection was re-established (over Redis); whatever was sent meanwhile is lost."""
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(queue_size)

    def matches(self, channel: str) -> bool:
        return channel == self.pattern if self.exact else fnmatch.fnmatchcase(channel, self.pattern)

    def deliver(self, msg: Message) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.dropped += 1

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        msg = await self._queue.get()
        if msg is None:
            # Leave the end marker for any other task iterating the same subscription.
            self._queue.put_nowait(None)
            raise StopAsyncIteration
        return msg

    async def close(self) -> None:
        self._end()

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


class Bus(ABC):
    @abstractmethod
    def publish(self, channel: str, data: Payload) -> None:
        """Queue ``data`` for every subscriber of ``channel`` on every worker; never waits, never raises."""

    @abstractmethod
    async def subscribe(self, pattern: str, queue_size: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        """Returns once the subscription is in place: anything published after that reaches it."""

    @abstractmethod
    async def subscribers(self, channel: str) -> int:
        """Exact-channel subscriptions to ``channel`` across all workers (patterns are not counted)."""

    @abstractmethod
    async def close(self) -> None:
        """Ends every subscription of this bus."""

    @abstractmethod
    def stats(self) -> dict[str, int]:
        """Counters for /metrics: at least published and dropped."""
