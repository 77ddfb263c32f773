"""Fan-out of live events and audio to screens: one bounded queue per subscriber, nobody waits for anybody.

``Fanout`` is the interface the rest of the service uses; ``Hub`` is the one-process implementation and
``service.fanout.bus_hub.BusHub`` the one across workers. Callers never ask which one they hold.

``publish`` never awaits. A subscriber whose event queue fills is cut off (its queue is emptied and a
``None`` tells its sender to close): a screen that cannot keep up would otherwise show stale alerts, which is
worse than reconnecting. Listen-in audio is real time, so a slow listener loses frames instead.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from service.analysis.wire import CallChanged, CallEvent

SubscriberRole = Literal["agent", "supervisor"]

AGENT_HIDDEN = frozenset({"speech_start", "speech_end"})
SUPERVISOR_BOARD = frozenset({"alert", "alert_retracted", "call_started", "call_updated", "call_ended"})


@dataclass(frozen=True, slots=True)
class LiveCallView:
    """A call in progress as a screen that connects now first sees it."""

    call: dict[str, Any]
    """The call object (``id``, ``agent_id``, ``status``...)."""
    agent_id: str
    t: float
    """The call's latest time (seconds of call audio)."""

    def started(self) -> CallEvent:
        return CallEvent(str(self.call["id"]), CallChanged("call_started", self.t, self.call))


@dataclass(eq=False)
class TeamScope:
    """A supervisor scoped to ``teams`` (the token's ``teams`` claim) sees only their agents' calls.

    ``members``: the agents filed under one of the teams when the screen connected; ``others``: those filed under
    another team. An agent in neither (no team filed yet) is seen once a call object of theirs names one of the
    teams (the ingest's ``team``). Who is filed where is read once, at connect: a screen sees a later change of
    an agent's team when it reconnects."""

    teams: frozenset[str]
    members: set[str]
    others: frozenset[str] = frozenset()

    def admits(self, ev: CallEvent, agent_id: str) -> bool:
        if agent_id in self.members:
            return True
        if agent_id in self.others:
            return False
        if ev.type not in ("call_started", "call_updated", "call_ended"):
            return False
        call = ev.event.call if isinstance(ev.event, CallChanged) else ev.wire.get("call")
        if isinstance(call, dict) and call.get("team") in self.teams:
            self.members.add(agent_id)
            return True
        return False

    def admits_call(self, call: dict[str, Any]) -> bool:
        """Whether a call (its call object) is one of the scope's, without remembering its agent."""
        agent = call.get("agent_id")
        if agent in self.members:
            return True
        return agent not in self.others and call.get("team") in self.teams


@dataclass(eq=False)
class Subscriber:
    role: SubscriberRole
    agent_id: str | None
    call_id: str | None = None
    """A supervisor following one call gets all its events, not just the board's."""
    queue: asyncio.Queue[CallEvent | None] = field(default_factory=asyncio.Queue)
    cut_off: bool = False
    types: frozenset[str] | None = None
    """Only these event types (``?types=alert,call_ended``), for clients that want less than everything."""
    scope: TeamScope | None = None
    """A supervisor scoped to teams: only their agents' calls."""

    def wants(self, ev: CallEvent, agent_id: str) -> bool:
        kind = ev.type
        if self.types is not None and kind not in self.types:
            return False
        if self.scope is not None and not self.scope.admits(ev, agent_id):
            return False
        if self.role == "agent":
            return agent_id == self.agent_id and kind not in AGENT_HIDDEN
        if self.call_id is not None:
            return ev.call_id == self.call_id and kind not in AGENT_HIDDEN
        return kind in SUPERVISOR_BOARD


@dataclass(eq=False)
class Listener:
    call_id: str
    queue: asyncio.Queue[bytes | None]


@dataclass(frozen=True, slots=True)
class HubStats:
    """What ``/metrics`` shows of the fan-out."""

    subscribers: int
    max_queue: int
    """The deepest subscriber queue: how far the slowest screen lags."""
    cut_off: int
    listeners: int
    audio_dropped: int
    bus: dict[str, int] | None = None
    """The bus's own counters; None in one process."""
    expired: int = 0
    """Other workers' calls ended here because their worker went silent."""


class Fanout(ABC):
    """Live events and listen-in audio, from the calls' pipelines to the screens, wherever either is."""

    @abstractmethod
    def subscribe(self, role: SubscriberRole, agent_id: str | None = None, call_id: str | None = None,
                  types: frozenset[str] | None = None, scope: TeamScope | None = None) -> Subscriber: ...

    @abstractmethod
    def unsubscribe(self, sub: Subscriber) -> None: ...

    @abstractmethod
    def publish(self, ev: CallEvent, agent_id: str) -> None:
        """Deliver ``ev`` (one of ``agent_id``'s calls) to every subscriber that wants it; never waits."""

    @abstractmethod
    def calls_elsewhere(self) -> list[LiveCallView]:
        """The live calls other workers follow, as last announced; empty in one process."""

    @abstractmethod
    def is_live_elsewhere(self, call_id: str) -> bool: ...

    def snapshot(self, sub: Subscriber, here: Iterable[LiveCallView]) -> list[CallEvent]:
        """``call_started`` for each call in progress that ``sub`` would see: this worker's own (``here``, fresh
        from the pipeline) and those of other workers, so a screen that connects mid-call is not blank."""
        mine = list(here)
        ids = {view.call["id"] for view in mine}
        views = mine + [view for view in self.calls_elsewhere() if view.call["id"] not in ids]
        events = [view.started() for view in views]
        return [ev for ev, view in zip(events, views, strict=True) if sub.wants(ev, view.agent_id)]

    @abstractmethod
    def listen(self, call_id: str) -> Listener: ...

    @abstractmethod
    def unlisten(self, lst: Listener) -> None: ...

    @abstractmethod
    def has_listeners(self, call_id: str) -> bool:
        """Whether anyone, on any worker, listens to this worker's call ``call_id``: else no audio is sent."""

    @abstractmethod
    def publish_audio(self, call_id: str, frame: bytes) -> None: ...

    @abstractmethod
    def end_call(self, call_id: str) -> None:
        """Tell the call's listeners the audio is over."""

    @abstractmethod
    def stats(self) -> HubStats: ...

    @abstractmethod
    async def close(self) -> None:
        """Stop whatever runs in the background; safe to call twice."""


class Hub(Fanout):
    """Everything in this process: the embedded default, and the local half of ``BusHub``."""

    def __init__(self, queue_size: int = 256, audio_queue_size: int = 50) -> None:
        self.queue_size = queue_size
        self.audio_queue_size = audio_queue_size
        self._subs: set[Subscriber] = set()
        self._listeners: dict[str, set[Listener]] = {}
        self.cut_off = 0
        self.audio_dropped = 0

    def subscribe(self, role: SubscriberRole, agent_id: str | None = None, call_id: str | None = None,
                  types: frozenset[str] | None = None, scope: TeamScope | None = None) -> Subscriber:
        sub = Subscriber(role, agent_id, call_id, asyncio.Queue(self.queue_size), types=types, scope=scope)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def publish(self, ev: CallEvent, agent_id: str) -> None:
        self._deliver(ev, agent_id)

    def _deliver(self, ev: CallEvent, agent_id: str) -> None:
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

    def calls_elsewhere(self) -> list[LiveCallView]:
        return []

    def is_live_elsewhere(self, call_id: str) -> bool:
        return False

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
                self.audio_dropped += 1

    def end_call(self, call_id: str) -> None:
        for lst in self._listeners.pop(call_id, set()):
            while not lst.queue.empty():
                lst.queue.get_nowait()
            lst.queue.put_nowait(None)

    async def close(self) -> None:
        """Nothing runs in the background here."""

    def stats(self) -> HubStats:
        return HubStats(subscribers=len(self._subs), max_queue=max((s.queue.qsize() for s in self._subs), default=0),
                        cut_off=self.cut_off, listeners=sum(len(g) for g in self._listeners.values()),
                        audio_dropped=self.audio_dropped)
