"""Observations made from transcripts: utterances, cue phrases, speaking rate and backchannels confirmed by their
words (``TextEvent``, with ``redaction.UtteranceRedacted``); ``to_dict`` is each one's wire form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from audio.events import Interruption
from service.analysis.redaction import UtteranceRedacted


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

    Emitted so that alert rules and screens can withdraw the interruption: ``retracts`` is that interruption, as
    the monitor emitted it (on the wire, its wire form; ``{}`` when there is none).
    """

    by: str
    start: float
    text: str
    t: float
    retracts: Interruption | None = None
    type: Literal["backchannel"] = "backchannel"

    def to_dict(self) -> dict[str, object]:
        retracts = {} if self.retracts is None else self.retracts.to_dict()
        return {"type": self.type, "by": self.by, "start": round(self.start, 3), "text": self.text,
                "confirmed_by": "words", "retracts": retracts, "t": round(self.t, 3)}


TextEvent = UtteranceEvent | UtteranceRedacted | PhraseEvent | SpeakingRateEvent | BackchannelConfirmed
"""What ``CallMonitor.add_transcript`` emits."""
