"""One call's events on their way out: typed inside the service, serialised once at the edges.

Every event a call produces is a typed object with a ``type`` and ``to_dict()``: the acoustic events
(``audio.events``), the text events (``text_events``, ``redaction``), the alerts (``alerts``) and the call's
lifecycle (``CallChanged``). ``CallEvent`` carries one of them with the call it belongs to; its wire form (the
SPEC's JSON object: the event's fields, ``call_id``, times on the call's clock) is made at most once, however
many screens, buses and stores it reaches. Events that come from another worker arrive as JSON and stay in
that form (``Received``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

SHIFTED = ("t", "start", "end")
"""The fields that are call times: moved onto the call's clock when a call's audio had a gap."""


class WireEvent(Protocol):
    @property
    def type(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class CallChanged:
    """``call_started`` / ``call_updated`` / ``call_ended``: the call object as it is now."""

    type: Literal["call_started", "call_updated", "call_ended"]
    t: float
    call: dict[str, Any]
    reason: str | None = None
    """Why it ended (``call_ended`` only)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "t": self.t, "call": self.call}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Received:
    """An event as another worker sent it: already in its wire form."""

    wire: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.wire.get("type", ""))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.wire)


class CallEvent:
    """One event of one call, with its wire form made on first use and kept."""

    __slots__ = ("_json", "_shift", "_wire", "call_id", "event")

    def __init__(self, call_id: str, event: WireEvent, shift: Callable[[float], float] | None = None) -> None:
        self.call_id = call_id
        self.event = event
        self._shift = shift
        self._wire: dict[str, Any] | None = None
        self._json: str | None = None

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> CallEvent:
        """An event that arrived in its wire form (from another worker, or read back from the store)."""
        ev = cls(str(wire.get("call_id", "")), Received(wire))
        ev._wire = wire
        return ev

    @property
    def type(self) -> str:
        return self.event.type

    @property
    def wire(self) -> dict[str, Any]:
        """The SPEC's JSON object for this event. Shared: do not modify it."""
        if self._wire is None:
            d = self.event.to_dict()
            d["call_id"] = self.call_id
            if self._shift is not None:
                for key in SHIFTED:
                    value = d.get(key)
                    if isinstance(value, float | int) and not isinstance(value, bool):
                        d[key] = self._shift(float(value))
            self._wire = d
        return self._wire

    @property
    def json(self) -> str:
        """``wire`` as JSON text, the form every socket and store row takes."""
        if self._json is None:
            self._json = json.dumps(self.wire, separators=(",", ":"))
        return self._json

    @property
    def t(self) -> float:
        value = self.wire.get("t", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    def __repr__(self) -> str:
        return f"CallEvent({self.call_id!r}, {self.event!r})"
