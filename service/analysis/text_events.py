"""Observations made from transcripts: the wire form of utterances, cue phrases and speaking rate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class UtteranceEvent:
    leg: str
    start: float
    end: float
    text: str
    """Already redacted."""
    language: str
    t: float
    words: tuple[tuple[str, float, float], ...] = ()
    type: Literal["utterance"] = "utterance"

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {"type": self.type, "leg": self.leg, "start": round(self.start, 3),
                                "end": round(self.end, 3), "text": self.text, "language": self.language,
                                "t": round(self.t, 3)}
        if self.words:
            d["words"] = [{"word": w, "start": round(s, 3), "end": round(e, 3)} for w, s, e in self.words]
        return d


@dataclass(frozen=True, slots=True)
class PhraseEvent:
    leg: str
    category: str
    text: str
    start: float
    t: float
    type: Literal["phrase"] = "phrase"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "category": self.category, "text": self.text,
                "start": round(self.start, 3), "t": round(self.t, 3)}


@dataclass(frozen=True, slots=True)
class SpeakingRateEvent:
    leg: str
    wpm: float
    t: float
    seconds: float = 0.0
    """Speaking time the rate was judged over."""
    type: Literal["speaking_rate"] = "speaking_rate"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "wpm": round(self.wpm), "seconds": round(self.seconds, 1),
                "t": round(self.t, 3)}


@dataclass(frozen=True, slots=True)
class BackchannelConfirmed:
    """The words of a burst flagged as an interruption show it was a backchannel ("okay", "mm-hm").

    Emitted so that alert rules and screens can withdraw the interruption; ``retracts`` names it.
    """

    by: str
    start: float
    text: str
    t: float
    retracts: dict[str, object] = field(default_factory=dict)
    type: Literal["backchannel"] = "backchannel"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "by": self.by, "start": round(self.start, 3), "text": self.text,
                "confirmed_by": "words", "retracts": self.retracts, "t": round(self.t, 3)}
