"""The bus across workers, on Redis pub/sub (``redis`` asyncio client).

Publishing: ``publish`` appends to an in-memory outbox that one sender task drains in order. While Redis
is unreachable the outbox **buffers** up to ``buffer`` messages (a Redis restart takes a second or two, and
alerts from that second still matter); past that the **oldest are dropped** and counted in ``dropped``,
because a screen is better served by the latest call state than by a stale backlog. Nothing raises into the
caller, so a Redis outage never stops a call's analysis.

Subscribing: each subscription holds its own pub/sub connection and reader task. After the connection
breaks it reconnects with backoff and subscribes again (``reconnects`` counts it). Redis keeps nothing for
absent subscribers, so whatever was published while a subscriber was cut off is lost to it: screens refetch
from REST after a gap, exactly as after their own websocket reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from service.fanout.bus import DEFAULT_QUEUE_SIZE, Bus, Message, Payload, Subscription, decode, encode

log = logging.getLogger("callwatch.bus")

DEFAULT_BUFFER = 10_000
"""Messages kept while Redis is away: about ten seconds of a busy floor's events plus listen-in audio."""
RETRY_MIN_S = 0.05
RETRY_MAX_S = 2.0
IDLE_PING_S = 10.0
"""A subscriber that heard nothing for this long pings, so a silently dead connection is noticed."""
CLOSE_DRAIN_S = 2.0
# Connection errors are retried by our own loops (forever, with backoff); the client's own retries are kept
# short so that a dead server is noticed quickly and the outbox, not a stuck call, holds the messages.
_CLIENT_RETRY = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)


class RedisBus(Bus):
    def __init__(self, url: str, *, buffer: int = DEFAULT_BUFFER) -> None:
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, retry=_CLIENT_RETRY, socket_connect_timeout=2, socket_timeout=10, health_check_interval=0)
        self._buffer = buffer
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._subs: set[_RedisSubscription] = set()
        self.published = 0
        self.dropped = 0
        self.send_failures = 0
        self.connected = True
        self._closed = False

    # -- publishing ------------------------------------------------------------------------------------

    def publish(self, channel: str, data: Payload) -> None:
        if self._closed:  # shutting down: calls still closing may publish, nobody will send it
            self.dropped += 1
            return
        if len(self._outbox) >= self._buffer:
            self._outbox.popleft()
            self.dropped += 1
        self._outbox.append((channel, encode(data)))
        self._empty.clear()
        self._wake.set()
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_forever(), name="callwatch-bus-send")

    async def _send_forever(self) -> None:
        delay = RETRY_MIN_S
        while True:
            if not self._outbox:
                self._empty.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._outbox[0]
            try:
                await self._client.publish(*item)
            except (RedisError, OSError) as e:
                if self.connected:
                    log.warning("Redis unreachable, buffering up to %d messages: %s", self._buffer, e)
                self.connected = False
                self.send_failures += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if not self.connected:
                log.info("Redis reachable again; sending %d buffered messages", len(self._outbox))
            self.connected = True
            delay = RETRY_MIN_S
            self.published += 1
            # The outbox may have dropped this very item while it was in flight, when full.
            if self._outbox and self._outbox[0] is item:
                self._outbox.popleft()

    # -- subscribing -----------------------------------------------------------------------------------

    async def subscribe(self, pattern: str, queue_size: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        """Raises ``redis.exceptions.ConnectionError`` if Redis cannot be reached now: a worker that starts
        without its bus should fail loudly; outages after that are ridden out."""
        sub = _RedisSubscription(self, pattern, queue_size)
        await sub.start()
        self._subs.add(sub)
        return sub

    async def subscribers(self, channel: str) -> int:
        try:
            counts: list[tuple[Any, int]] = await self._client.pubsub_numsub(channel)
        except (RedisError, OSError):
            return 0
        return sum(n for _, n in counts)

    async def close(self) -> None:
        """Sends what is buffered (for up to CLOSE_DRAIN_S, if Redis is reachable), then ends everything."""
        self._closed = True
        if self._sender is not None:
            if self.connected:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._empty.wait(), CLOSE_DRAIN_S)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        for sub in tuple(self._subs):
            await sub.close()
        await self._client.aclose()

    def _forget(self, sub: _RedisSubscription) -> None:
        self._subs.discard(sub)

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "buffered": len(self._outbox),
                "send_failures": self.send_failures, "subscriptions": len(self._subs),
                "subscriber_dropped": sum(s.dropped for s in self._subs),
                "subscriber_reconnects": sum(s.reconnects for s in self._subs)}


class _RedisSubscription(Subscription):
    def __init__(self, bus: RedisBus, pattern: str, queue_size: int) -> None:
        super().__init__(pattern, queue_size)
        self._bus = bus
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self.active = False

    async def start(self) -> None:
        self._pubsub = await self._connect()
        self._task = asyncio.create_task(self._read_forever(), name=f"callwatch-bus-sub {self.pattern}")

    async def _connect(self) -> PubSub:
        pubsub = self._bus._client.pubsub()
        try:
            if self.exact:
                await pubsub.subscribe(self.pattern)
            else:
                await pubsub.psubscribe(self.pattern)
            # Wait for Redis to confirm, so that whatever is published after subscribe() returns arrives.
            while True:
                reply = await pubsub.get_message(timeout=IDLE_PING_S)
                if reply is None:
                    raise TimeoutError(f"Redis did not confirm the subscription to {self.pattern!r}")
                if reply["type"] in ("subscribe", "psubscribe"):
                    break
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            raise
        self.active = True
        return pubsub

    async def _read_forever(self) -> None:
        delay = RETRY_MIN_S
        while True:
            try:
                if self._pubsub is None:
                    self._pubsub = await self._connect()
                    self.reconnects += 1
                    log.info("resubscribed to %s", self.pattern)
                    delay = RETRY_MIN_S
                reply = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=IDLE_PING_S)
                if reply is None:
                    await self._pubsub.ping()
                elif reply["type"] in ("message", "pmessage"):
                    self._receive(reply)
            except (RedisError, OSError) as e:
                if self.active:
                    log.warning("subscription %s lost its Redis connection: %s", self.pattern, e)
                self.active = False
                await self._drop_connection()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _receive(self, reply: dict[str, Any]) -> None:
        channel = reply["channel"]
        try:
            data = decode(reply["data"])
        except ValueError:
            log.warning("ignoring a message on %s that no callwatch worker wrote", channel)
            return
        self.deliver(Message(channel.decode() if isinstance(channel, bytes) else str(channel), data))

    async def _drop_connection(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

    async def close(self) -> None:
        self._bus._forget(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.active = False
        await self._drop_connection()
        self._end()


def open_bus(url: str = "") -> Bus:
    """``redis://HOST:PORT/DB`` (or ``rediss://``, ``unix://``): the only bus between workers today."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBus(url)
    shown = url.split("@")[-1]  # never echo a password into logs
    raise ValueError(f"unsupported bus URL {shown!r}: use redis://HOST:PORT/DB, or nothing for the in-process bus")
