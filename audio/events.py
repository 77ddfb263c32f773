"""Typed observations the per-call core emits.

Times inside are sample counts at the analysis rate (8 kHz); ``to_dict`` turns them into the seconds of the
public contract (docs/integration.md). ``t`` is the amount of call audio consumed when the event became known, so
``t - start`` is an honest detection delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RATE = 8000
"""Analysis sample rate: every leg is brought to telephone band before it is analysed."""

Leg = Literal["customer", "agent"]
LEGS: tuple[Leg, Leg] = ("customer", "agent")


def other(leg: Leg) -> Leg:
    return "agent" if leg == "customer" else "customer"


def seconds(samples: int) -> float:
    return round(samples / RATE, 3)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A leg began a speech segment (after hysteresis); ``start`` is the first voiced frame."""

    leg: Leg
    start: int
    t: int
    type: Literal["speech_start"] = "speech_start"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": seconds(self.start), "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """A leg's speech segment is over; ``end`` is the end of its last voiced frame."""

    leg: Leg
    start: int
    end: int
    t: int
    type: Literal["speech_end"] = "speech_end"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": seconds(self.start), "end": seconds(self.end),
                "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class Interruption:
    """``by`` started talking over ``of`` while ``of`` was mid-utterance, and took the floor: ``of`` stopped
    (``kind`` "cutoff") or both kept talking (``kind`` "competitive")."""

    by: Leg
    of: Leg
    start: int
    overlap: int
    t: int
    kind: Literal["cutoff", "competitive"] = "competitive"
    confidence: float = 1.0
    """How often a decision of this kind was a labelled interruption (``audio.overlap.CONFIDENCE``)."""
    type: Literal["interruption"] = "interruption"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "by": self.by, "of": self.of, "start": seconds(self.start),
                "overlap": seconds(self.overlap), "kind": self.kind, "confidence": self.confidence,
                "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class Backchannel:
    """A short listener response inside the other leg's turn: explicitly not an interruption."""

    by: Leg
    start: int
    t: int
    type: Literal["backchannel"] = "backchannel"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "by": self.by, "start": seconds(self.start), "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class RaisedVoice:
    """The leg's voice rose above its own calm baseline: loudness in dB, pitch in semitones."""

    leg: Leg
    start: int
    loudness_db: float
    pitch_st: float
    t: int
    type: Literal["raised_voice"] = "raised_voice"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": seconds(self.start),
                "loudness_db": round(self.loudness_db, 1), "pitch_st": round(self.pitch_st, 1),
                "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class RaisedVoiceSustained:
    """The leg's voice has now been raised for ``duration`` (from the episode's start to its latest raised
    speech): a supervisor should listen to this call. Once per episode."""

    leg: Leg
    start: int
    duration: int
    t: int
    type: Literal["raised_voice_sustained"] = "raised_voice_sustained"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": seconds(self.start),
                "duration": seconds(self.duration), "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class RaisedVoiceEnded:
    leg: Leg
    start: int
    end: int
    t: int
    type: Literal["raised_voice_end"] = "raised_voice_end"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": seconds(self.start), "end": seconds(self.end),
                "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class DeadAir:
    """Neither leg has spoken since ``start``; emitted once the silence passes the threshold."""

    start: int
    duration: int
    t: int
    type: Literal["dead_air"] = "dead_air"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "start": seconds(self.start), "duration": seconds(self.duration),
                "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class Monologue:
    """One leg has held the floor (the other only backchannelling) for ``duration``."""

    leg: Leg
    start: int
    duration: int
    t: int
    type: Literal["monologue"] = "monologue"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": seconds(self.start),
                "duration": seconds(self.duration), "t": seconds(self.t)}


@dataclass(frozen=True, slots=True)
class ProsodySample:
    """Per-leg loudness and pitch summary over a short block of speech, for timelines and meters.

    ``loudness_db`` and ``pitch_hz`` are medians over the block's speech frames (NaN-free: pitch is 0 when no
    frame was voiced); the baselines are those in force at the block's end (None until known).
    """

    leg: Leg
    start: int
    end: int
    loudness_db: float
    pitch_hz: float
    baseline_loudness_db: float | None
    baseline_pitch_hz: float | None
    t: int
    type: Literal["prosody"] = "prosody"

    def to_dict(self) -> dict[str, object]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {"type": self.type, "leg": self.leg, "start": seconds(self.start), "end": seconds(self.end),
                "loudness_db": r(self.loudness_db), "pitch_hz": r(self.pitch_hz),
                "baseline_loudness_db": r(self.baseline_loudness_db),
                "baseline_pitch_hz": r(self.baseline_pitch_hz), "t": seconds(self.t)}


AcousticEvent = (SpeechStarted | SpeechEnded | Interruption | Backchannel | RaisedVoice | RaisedVoiceSustained
                 | RaisedVoiceEnded | DeadAir | Monologue | ProsodySample)
