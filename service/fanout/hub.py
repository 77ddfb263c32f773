"""Fan-out of live events and audio to screens: one bounded queue per subscriber, nobody waits for anybody.

``publish`` never awaits. A subscriber whose event queue fills is cut off (its queue is emptied and a
``None`` tells its sender to close): a screen that cannot keep up would otherwise show stale alerts, which is
worse than reconnecting. Listen-in audio is real time, so a slow listener loses frames instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

Event = dict[str, Any]
SubscriberRole = Literal["agent", "supervisor"]

AGENT_HIDDEN = frozenset({"speech_start", "speech_end"})
SUPERVISOR_BOARD = frozenset({"alert", "alert_retracted", "call_started", "call_updated", "call_ended"})


@dataclass(eq=False)
class Subscriber:
    role: SubscriberRole
    agent_id: str | None
    call_id: str | None = None
    """A supervisor following one call gets all its events, not just the board's."""
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    cut_off: bool = False
    types: frozenset[str] | None = None
    """Only these event types (``?types=alert,call_ended``), for clients that want less than everything."""

    def wants(self, ev: Event, agent_id: str) -> bool:
        kind = ev.get("type")
        if self.types is not None and kind not in self.types:
            return False
        if self.role == "agent":
            return agent_id == self.agent_id and kind not in AGENT_HIDDEN
        if self.call_id is not None:
            return ev.get("call_id") == self.call_id and kind not in AGENT_HIDDEN
        return kind in SUPERVISOR_BOARD


@dataclass(eq=False)
class Listener:
    call_id: str
    queue: asyncio.Queue[bytes | None]
    dropped: int = 0


class Hub:
    def __init__(self, queue_size: int = 256, audio_queue_size: int = 50) -> None:
        self.queue_size = queue_size
        self.audio_queue_size = audio_queue_size
        self._subs: set[Subscriber] = set()
        self._listeners: dict[str, set[Listener]] = {}
        self.published = 0
        self.cut_off = 0
        self.audio_dropped = 0

    def subscribe(self, role: SubscriberRole, agent_id: str | None = None, call_id: str | None = None,
                  types: frozenset[str] | None = None) -> Subscriber:
        sub = Subscriber(role, agent_id, call_id, asyncio.Queue(self.queue_size), types=types)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def publish(self, ev: Event, agent_id: str) -> None:
        self.published += 1
        for sub in tuple(self._subs):
            if sub.cut_off or not sub.wants(ev, agent_id):
                continue
            try:
                sub.queue.put_nowait(ev)
            except asyncio.QueueFull:
                self._cut_off(sub)

    def _cut_off(self, sub: Subscriber) -> None:
        sub.cut_off = True
        self.cut_off += 1
        self._subs.discard(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def listen(self, call_id: str) -> Listener:
        lst = Listener(call_id, asyncio.Queue(self.audio_queue_size))
        self._listeners.setdefault(call_id, set()).add(lst)
        return lst

    def unlisten(self, lst: Listener) -> None:
        group = self._listeners.get(lst.call_id)
        if group is not None:
            group.discard(lst)
            if not group:
                del self._listeners[lst.call_id]

    def has_listeners(self, call_id: str) -> bool:
        return call_id in self._listeners

    def publish_audio(self, call_id: str, frame: bytes) -> None:
        for lst in self._listeners.get(call_id, ()):
            try:
                lst.queue.put_nowait(frame)
            except asyncio.QueueFull:
                lst.dropped += 1
                self.audio_dropped += 1

    def end_call(self, call_id: str) -> None:
        """Tell the call's listeners the audio is over."""
        for lst in self._listeners.pop(call_id, set()):
            while not lst.queue.empty():
                lst.queue.get_nowait()
            lst.queue.put_nowait(None)

    def depths(self) -> dict[str, int]:
        return {"subscribers": len(self._subs),
                "max_queue": max((s.queue.qsize() for s in self._subs), default=0),
                "listeners": sum(len(g) for g in self._listeners.values())}
