"""The hub across workers: the same ``Hub`` fan-out, with the bus carrying events and listen-in audio between them.

A worker delivers what its own calls publish to its own screens at once (no round trip through Redis for
the agent on the same worker), and sends it on the bus tagged with its origin; what comes back from the bus
is delivered only if another worker sent it.

Listen-in audio is heavy (32 kB/s a call), so it crosses the bus only while someone elsewhere listens: a
worker listening to another worker's call subscribes to that call's exact channel, and the worker that owns
the call sees the subscription (``Bus.subscribers``, refreshed every second) and starts sending frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from service.bus import Bus, Subscription, open_bus
from service.hub import Event, Hub, Listener

log = logging.getLogger("callwatch.hub")

EVENTS = "callwatch.events"
AUDIO = "callwatch.audio."
"""Followed by the call id; one exact channel per call, so that Redis can count its listeners."""
LISTENER_REFRESH_S = 1.0


async def open_hub(bus_url: str, queue_size: int = 256) -> Hub:
    """The in-process ``Hub`` when no bus is configured; else a started ``BusHub`` that owns its bus."""
    if not bus_url:
        return Hub(queue_size)
    hub = BusHub(open_bus(bus_url), queue_size, owns_bus=True)
    try:
        await hub.start()
    except BaseException:
        await hub.close()
        raise
    return hub


async def close_hub(hub: Hub) -> None:
    if isinstance(hub, BusHub):
        await hub.close()


class BusHub(Hub):
    def __init__(self, bus: Bus, queue_size: int = 256, audio_queue_size: int = 50, *, owns_bus: bool = False) -> None:
        super().__init__(queue_size, audio_queue_size)
        self.bus = bus
        self._owns_bus = owns_bus
        self.origin = uuid.uuid4().hex
        self.own_calls: set[str] = set()
        self.remote_calls: dict[str, dict[str, Any]] = {}
        """Live calls of other workers (their latest call object), as announced since this worker started."""
        self._listened_elsewhere: set[str] = set()
        self._relays: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: Subscription | None = None

    async def start(self) -> None:
        """Subscribe before the first call arrives; raises if the bus cannot be reached at all."""
        self._events = await self.bus.subscribe(EVENTS, queue_size=max(self.queue_size * 4, 1000))
        self._spawn(self._receive_events(self._events))
        self._spawn(self._watch_listeners())

    async def close(self) -> None:
        for task in (*self._tasks, *self._relays.values()):
            task.cancel()
        for task in (*self._tasks, *self._relays.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._events is not None:
            await self._events.close()
        if self._owns_bus:
            await self.bus.close()

    # -- events ----------------------------------------------------------------------------------------

    def publish(self, ev: Event, agent_id: str) -> None:
        kind, call_id = ev.get("type"), ev.get("call_id")
        if kind == "call_started" and isinstance(call_id, str):
            self.own_calls.add(call_id)
        elif kind == "call_ended" and isinstance(call_id, str):
            self.own_calls.discard(call_id)
        super().publish(ev, agent_id)
        self.bus.publish(EVENTS, {"origin": self.origin, "agent_id": agent_id, "event": ev})

    async def _receive_events(self, sub: Subscription) -> None:
        async for msg in sub:
            data = msg.data
            if not isinstance(data, dict) or data.get("origin") == self.origin:
                continue
            ev, agent_id = data.get("event"), data.get("agent_id")
            if not isinstance(ev, dict) or not isinstance(agent_id, str):
                continue
            self._track_remote(ev)
            super().publish(ev, agent_id)

    def _track_remote(self, ev: Event) -> None:
        call_id, call = ev.get("call_id"), ev.get("call")
        if not isinstance(call_id, str):
            return
        if ev.get("type") in ("call_started", "call_updated") and isinstance(call, dict):
            self.remote_calls[call_id] = call
        elif ev.get("type") == "call_ended":
            self.remote_calls.pop(call_id, None)

    def is_live_elsewhere(self, call_id: str) -> bool:
        return call_id in self.remote_calls

    # -- listen-in audio -------------------------------------------------------------------------------

    def has_listeners(self, call_id: str) -> bool:
        return super().has_listeners(call_id) or call_id in self._listened_elsewhere

    def publish_audio(self, call_id: str, frame: bytes) -> None:
        super().publish_audio(call_id, frame)
        if call_id in self._listened_elsewhere:
            self.bus.publish(AUDIO + call_id, frame)

    def end_call(self, call_id: str) -> None:
        super().end_call(call_id)
        if call_id in self._listened_elsewhere:
            self.bus.publish(AUDIO + call_id, {"end": True})
            self._listened_elsewhere.discard(call_id)

    def listen(self, call_id: str) -> Listener:
        lst = super().listen(call_id)
        if call_id not in self.own_calls and call_id not in self._relays:
            self._relays[call_id] = asyncio.get_running_loop().create_task(self._relay_audio(call_id))
        return lst

    def unlisten(self, lst: Listener) -> None:
        super().unlisten(lst)
        if not super().has_listeners(lst.call_id):
            relay = self._relays.pop(lst.call_id, None)
            if relay is not None:
                relay.cancel()

    async def _relay_audio(self, call_id: str) -> None:
        """Another worker's call: its frames come over the bus to this worker's listeners."""
        try:
            sub = await self.bus.subscribe(AUDIO + call_id, queue_size=self.audio_queue_size)
        except Exception:
            log.exception("cannot listen in on call %s through the bus", call_id)
            return
        try:
            async for msg in sub:
                if isinstance(msg.data, bytes):
                    super().publish_audio(call_id, msg.data)
                else:
                    super().end_call(call_id)
                    break
        finally:
            await sub.close()
            if self._relays.get(call_id) is asyncio.current_task():
                del self._relays[call_id]

    async def _watch_listeners(self) -> None:
        """Which of this worker's calls someone on another worker is listening to; no event says so."""
        while True:
            for call_id in tuple(self.own_calls):
                if await self.bus.subscribers(AUDIO + call_id):
                    self._listened_elsewhere.add(call_id)
                else:
                    self._listened_elsewhere.discard(call_id)
            await asyncio.sleep(LISTENER_REFRESH_S)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
