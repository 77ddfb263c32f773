"""The hub across workers: the same ``Hub`` fan-out, with the bus carrying events and listen-in audio between them.

A worker delivers what its own calls publish to its own screens at once (no round trip through Redis for
the agent on the same worker), and sends it on the bus tagged with its origin; what comes back from the bus
is delivered only if another worker sent it.

Listen-in audio is heavy (32 kB/s a call), so it crosses the bus only while someone elsewhere listens: a
worker listening to another worker's call subscribes to that call's exact channel, and the worker that owns
the call sees the subscription (``Bus.subscribers``, refreshed every second) and starts sending frames.

Liveness: every ``heartbeat_s`` a worker announces on the events channel the calls it is following (their
latest call objects). A worker that started after a call began learns of it from there; one that misses a
worker's messages for ``timeout_s`` takes it for dead (killed, or cut off from Redis) and ends its calls on
its own screens: ``call_ended`` with status ``interrupted``, as the store records them (``service.web.app``).
Nothing expires while this worker's own subscription is down or has been back for less than the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from service.analysis.wire import CallChanged, CallEvent
from service.fanout.bus import Bus, Subscription
from service.fanout.hub import Fanout, Hub, HubStats, Listener, LiveCallView
from service.fanout.redis_bus import open_bus

log = logging.getLogger("callwatch.hub")

EVENTS = "callwatch.events"
AUDIO = "callwatch.audio."
"""Followed by the call id; one exact channel per call, so that Redis can count its listeners."""
LISTENER_REFRESH_S = 1.0
HEARTBEAT_S = 5.0
TIMEOUT_S = 30.0


async def open_hub(bus_url: str, queue_size: int = 256, *, heartbeat_s: float = HEARTBEAT_S,
                   timeout_s: float = TIMEOUT_S) -> Hub:
    """The in-process ``Hub`` when no bus is configured; else a started ``BusHub`` that owns its bus. Callers use
    it as a ``Fanout``: nothing outside this package needs to know which one it is."""
    if not bus_url:
        return Hub(queue_size)
    hub = BusHub(open_bus(bus_url), queue_size, owns_bus=True, heartbeat_s=heartbeat_s, timeout_s=timeout_s)
    try:
        await hub.start()
    except BaseException:
        await hub.close()
        raise
    return hub


async def close_hub(hub: Fanout) -> None:
    await hub.close()


class BusHub(Hub):
    def __init__(self, bus: Bus, queue_size: int = 256, audio_queue_size: int = 50, *, owns_bus: bool = False,
                 heartbeat_s: float = HEARTBEAT_S, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(queue_size, audio_queue_size)
        self.bus = bus
        self._owns_bus = owns_bus
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self.origin = uuid.uuid4().hex
        self.own_calls: set[str] = set()
        self._own_objects: dict[str, tuple[dict[str, Any], str]] = {}
        """This worker's live calls: latest call object and agent, for its heartbeats."""
        self.remote_calls: dict[str, dict[str, Any]] = {}
        """Live calls of other workers (their latest call object), as announced by them."""
        self._remote: dict[str, tuple[str, str]] = {}
        """Call id -> (origin, agent id) of each remote call."""
        self._closed = False
        self._heard: dict[str, float] = {}
        """Origin -> when (monotonic) this worker last heard anything from it."""
        self._listening_since: float | None = None
        self._reconnects = 0
        """Since when (monotonic) this worker's own events subscription has been receiving without a break."""
        self.expired = 0
        """Remote calls ended here because their worker went silent."""
        self._listened_elsewhere: set[str] = set()
        self._relays: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: Subscription | None = None

    async def start(self) -> None:
        """Subscribe before the first call arrives; raises if the bus cannot be reached at all."""
        self._events = await self.bus.subscribe(EVENTS, queue_size=max(self.queue_size * 4, 1000))
        self._spawn(self._receive_events(self._events))
        self._spawn(self._watch_listeners())
        self._spawn(self._keep_alive())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
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

    def publish(self, ev: CallEvent, agent_id: str) -> None:
        kind, call_id = ev.type, ev.call_id
        if kind == "call_started":
            self.own_calls.add(call_id)
        elif kind == "call_ended":
            self.own_calls.discard(call_id)
            self._own_objects.pop(call_id, None)
        if kind in ("call_started", "call_updated") and call_id in self.own_calls:
            call = ev.wire.get("call")
            if isinstance(call, dict):
                self._own_objects[call_id] = (call, agent_id)
        self._deliver(ev, agent_id)
        self.bus.publish(EVENTS, {"origin": self.origin, "agent_id": agent_id, "event": ev.wire})

    async def _receive_events(self, sub: Subscription) -> None:
        async for msg in sub:
            data = msg.data
            origin = data.get("origin") if isinstance(data, dict) else None
            if not isinstance(data, dict) or not isinstance(origin, str) or origin == self.origin:
                continue
            self._heard[origin] = time.monotonic()
            alive = data.get("alive")
            if isinstance(alive, list):
                self._reconcile(origin, alive)
                continue
            wire, agent_id = data.get("event"), data.get("agent_id")
            if not isinstance(wire, dict) or not isinstance(agent_id, str):
                continue
            ev = CallEvent.from_wire(wire)
            self._track_remote(origin, ev, agent_id)
            self._deliver(ev, agent_id)

    def _track_remote(self, origin: str, ev: CallEvent, agent_id: str) -> None:
        call_id, call = ev.call_id, ev.wire.get("call")
        if not call_id:
            return
        if ev.type in ("call_started", "call_updated") and isinstance(call, dict):
            self.remote_calls[call_id] = call
            self._remote[call_id] = (origin, agent_id)
        elif ev.type == "call_ended":
            self.remote_calls.pop(call_id, None)
            self._remote.pop(call_id, None)

    def _reconcile(self, origin: str, alive: list[Any]) -> None:
        """A heartbeat lists every call its worker follows: learn those missed, forget those it no longer has.

        Messages from one worker arrive in order, so the list is exactly what that worker had published.
        """
        listed: set[str] = set()
        for item in alive:
            call, agent_id = (item.get("call"), item.get("agent_id")) if isinstance(item, dict) else (None, None)
            if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not isinstance(agent_id, str):
                continue
            listed.add(call["id"])
            if call["id"] not in self.remote_calls:
                self.remote_calls[call["id"]] = call
                self._remote[call["id"]] = (origin, agent_id)
        for call_id, (owner, _) in tuple(self._remote.items()):
            if owner == origin and call_id not in listed:  # its call_ended was lost on the way
                self.remote_calls.pop(call_id, None)
                del self._remote[call_id]

    async def _keep_alive(self) -> None:
        """Announce this worker's calls; end, on this worker's screens, the calls of workers gone silent."""
        while True:
            self.bus.publish(EVENTS, {"origin": self.origin, "alive": [
                {"call": call, "agent_id": agent_id} for call, agent_id in self._own_objects.values()]})
            self.expire_silent()
            await asyncio.sleep(self.heartbeat_s)

    def expire_silent(self, now: float | None = None) -> list[str]:
        """End the remote calls of every worker not heard from within the timeout; returns their ids."""
        now = time.monotonic() if now is None else now
        sub = self._events
        reconnects = sub.reconnects if sub is not None else 0
        if sub is None or not sub.active or reconnects != self._reconnects:
            # Whatever the others sent while this worker was cut off was lost to it, not unsent.
            self._listening_since, self._reconnects = None, reconnects
            return []
        if self._listening_since is None:
            self._listening_since = now
        cutoff = now - self.timeout_s
        if self._listening_since > cutoff:
            return []  # not listening long enough to tell silence from our own gap
        silent = {o for o, heard in self._heard.items() if heard < cutoff}
        expired = [cid for cid, (origin, _) in self._remote.items() if origin in silent]
        wall = time.time()
        for call_id in expired:
            origin, agent_id = self._remote.pop(call_id)
            last = self.remote_calls.pop(call_id, None) or {"id": call_id, "agent_id": agent_id}
            # It ended, as far as anyone here knows, when its worker was last heard from.
            call = {**last, "status": "interrupted", "ended": last.get("ended") or wall - (now - self._heard[origin])}
            log.warning("the worker following call %s went silent: ended here as interrupted", call_id)
            self._deliver(CallEvent(call_id, CallChanged("call_ended", float(call.get("duration") or 0.0), call)),
                          agent_id)
            super().end_call(call_id)  # its listeners here hear no more
        for origin in silent:
            del self._heard[origin]
        self.expired += len(expired)
        return expired

    def is_live_elsewhere(self, call_id: str) -> bool:
        return call_id in self.remote_calls

    def calls_elsewhere(self) -> list[LiveCallView]:
        return [LiveCallView(call, self._remote[call_id][1], float(call.get("duration") or 0.0))
                for call_id, call in self.remote_calls.items() if call_id in self._remote]

    def stats(self) -> HubStats:
        local = super().stats()
        return HubStats(subscribers=local.subscribers, max_queue=local.max_queue, cut_off=local.cut_off,
                        listeners=local.listeners, audio_dropped=local.audio_dropped, bus=self.bus.stats(),
                        expired=self.expired)

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
