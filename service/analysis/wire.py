"""One call's events on their way out: typed inside the service, serialised once at the edges.

Every event a call produces is a typed object with a ``type`` and ``to_dict()`` (a ``WireEvent``): what the
monitor observes (``Observation``: the acoustic events of ``audio.events``, the text events of ``text_events``
and ``redaction``), the alerts (``monitor.Alert``, ``monitor.AlertRetracted``), the call's lifecycle
(``CallChanged``) and its skipped audio (``Gap``). ``CallEvent`` carries one of them with the call it belongs
to; its wire form (the SPEC's JSON object: the event's fields, ``call_id``, times on the call's clock) is made
at most once, however many screens, buses and stores it reaches. Events that come from another worker arrive
as JSON and stay in that form (``Received``); ``observation`` reads a monitor event back from its wire form,
for tools that kept only that.
"""

from __future__ import annotations

import bisect
import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from audio.events import (
    LEGS,
    RATE,
    AcousticEvent,
    Backchannel,
    DeadAir,
    Interruption,
    Leg,
    Monologue,
    ProsodySample,
    RaisedVoice,
    RaisedVoiceEnded,
    RaisedVoiceSustained,
    SpeechEnded,
    SpeechStarted,
    seconds,
)
from service.analysis.redaction import UtteranceRedacted
from service.analysis.text_events import (
    BackchannelConfirmed,
    PhraseEvent,
    SpeakingRateEvent,
    TextEvent,
    UtteranceEvent,
)

SHIFTED = ("t", "start", "end")
"""The fields that are call times: moved onto the call's clock when a call's audio had a gap."""

Clock = Callable[[float], float]
"""Monitor time (s: the audio analysed) to call time (s: with the skipped gaps), rounded as the wire rounds."""
Observation = AcousticEvent | TextEvent
"""Everything ``CallMonitor`` emits: what the alert engine observes."""


def call_clock(gap_at: tuple[float, ...], gap_total: tuple[float, ...]) -> Clock:
    """The clock of a call that skipped audio: ``gap_at``, the monitor time (s) where each gap was skipped;
    ``gap_total``, the seconds skipped up to and including it. Fixed once made: the next gap makes a new clock."""
    return functools.partial(_call_time, gap_at, gap_total)


def _call_time(gap_at: tuple[float, ...], gap_total: tuple[float, ...], monitor_s: float) -> float:
    i = bisect.bisect_right(gap_at, monitor_s)
    return round(monitor_s + (gap_total[i - 1] if i else 0.0), 3)


class WireEvent(Protocol):
    """Any event of a call: its ``type`` and its wire form without the call id."""

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
class Gap:
    """Call time the sender did not send (longer than is worth analysing as silence): the clock moved on.
    ``start`` and ``t`` are call times already."""

    start: float
    duration: float
    t: float
    type: Literal["gap"] = "gap"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "start": self.start, "duration": self.duration, "t": self.t}


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

    def __init__(self, call_id: str, event: WireEvent, shift: Clock | None = None) -> None:
        """``shift``: the call's clock when its times need moving (a call with skipped gaps), else None. It must
        not change later: the wire form may be made after the next gap."""
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

    def to_dict(self) -> dict[str, Any]:
        """``wire``, so that an envelope stands for its event where another cites it (an alert's ``cause``, which
        shows the observation as it went out: with the call id, on the call's clock). Shared: do not modify it."""
        return self.wire

    @property
    def json(self) -> str:
        """``wire`` as JSON text, the form every socket and store row takes."""
        if self._json is None:
            try:
                self._json = json.dumps(self.wire, separators=(",", ":"), allow_nan=False)
            except ValueError:
                # NaN or infinity is not JSON: browsers' JSON.parse and PostgreSQL refuse it. Unknown is null.
                self._json = json.dumps(_finite(self.wire), separators=(",", ":"))
        return self._json

    @property
    def t(self) -> float:
        value = self.wire.get("t", 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    def __repr__(self) -> str:
        return f"CallEvent({self.call_id!r}, {self.event!r})"


def wire_times(ev: Observation) -> tuple[float, float | None]:
    """``ev``'s ``t`` and ``start`` as its wire form shows them, in seconds (``start`` None where it has none),
    without making the wire form."""
    if isinstance(ev, AcousticEvent):
        return seconds(ev.t), seconds(ev.start)
    if isinstance(ev, SpeakingRateEvent):
        return round(ev.t, 3), None
    return round(ev.t, 3), round(ev.start, 3)


def observation(wire: dict[str, Any]) -> Observation | None:
    """A monitor event read back from its wire form (``to_dict``'s, with or without ``call_id``), for tools that
    kept only that (``callwatch analyze``'s ``triage`` takes such lists); None for any other type. Acoustic
    events hold sample counts: the seconds go back to the samples they were rounded from, so ``to_dict`` gives
    the same wire form again. Raises KeyError, TypeError or ValueError for a malformed event."""
    w = wire
    kind = w.get("type")
    if kind == "utterance":
        return UtteranceEvent(_leg(w["leg"]), float(w["start"]), float(w["end"]), str(w["text"]),
                              str(w["language"]), float(w["t"]), _words(w.get("words", ())))
    if kind == "utterance_redacted":
        return UtteranceRedacted(_leg(w["leg"]), float(w["start"]), float(w["end"]), str(w["text"]),
                                 str(w["language"]), float(w["t"]), _words(w.get("words", ())),
                                 tuple(str(x) for x in w["tags"]),
                                 tuple((float(a), float(b)) for a, b in w["silenced"]))
    if kind == "phrase":
        return PhraseEvent(_leg(w["leg"]), str(w["category"]), str(w["text"]), float(w["start"]), float(w["t"]))
    if kind == "speaking_rate":
        return SpeakingRateEvent(_leg(w["leg"]), float(w["wpm"]), float(w["t"]), float(w.get("seconds", 0.0)))
    if kind == "backchannel" and "retracts" in w:
        retracts = observation(w["retracts"]) if w["retracts"] else None
        if retracts is not None and not isinstance(retracts, Interruption):
            raise ValueError(f"a backchannel retracts an interruption, not {retracts.type}")
        return BackchannelConfirmed(_leg(w["by"]), float(w["start"]), str(w["text"]), float(w["t"]), retracts)
    if kind == "backchannel":
        return Backchannel(_leg(w["by"]), _n(w["start"]), _n(w["t"]))
    if kind == "interruption":
        return Interruption(_leg(w["by"]), _leg(w["of"]), _n(w["start"]), _n(w["overlap"]), _n(w["t"]),
                            "cutoff" if w.get("kind") == "cutoff" else "competitive",
                            float(w.get("confidence", 1.0)))
    if kind == "speech_start":
        return SpeechStarted(_leg(w["leg"]), _n(w["start"]), _n(w["t"]))
    if kind == "speech_end":
        return SpeechEnded(_leg(w["leg"]), _n(w["start"]), _n(w["end"]), _n(w["t"]))
    if kind == "raised_voice":
        return RaisedVoice(_leg(w["leg"]), _n(w["start"]), float(w["loudness_db"]), float(w["pitch_st"]), _n(w["t"]))
    if kind == "raised_voice_sustained":
        return RaisedVoiceSustained(_leg(w["leg"]), _n(w["start"]), _n(w["duration"]), _n(w["t"]))
    if kind == "raised_voice_end":
        return RaisedVoiceEnded(_leg(w["leg"]), _n(w["start"]), _n(w["end"]), _n(w["t"]))
    if kind == "dead_air":
        return DeadAir(_n(w["start"]), _n(w["duration"]), _n(w["t"]))
    if kind == "monologue":
        return Monologue(_leg(w["leg"]), _n(w["start"]), _n(w["duration"]), _n(w["t"]))
    if kind == "prosody":
        return ProsodySample(_leg(w["leg"]), _n(w["start"]), _n(w["end"]), float(w["loudness_db"]),
                             float(w["pitch_hz"]), _maybe(w.get("baseline_loudness_db")),
                             _maybe(w.get("baseline_pitch_hz")), _n(w["t"]))
    return None


def _n(seconds: Any) -> int:
    return round(float(seconds) * RATE)


def _maybe(value: Any) -> float | None:
    return None if value is None else float(value)


def _leg(value: Any) -> Leg:
    for leg in LEGS:
        if value == leg:
            return leg
    raise ValueError(f"not a leg: {value!r}")


def _words(words: Any) -> tuple[tuple[str, float, float], ...]:
    return tuple((str(w["word"]), float(w["start"]), float(w["end"])) for w in words)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
