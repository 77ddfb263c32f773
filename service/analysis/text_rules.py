"""The text side of the per-call monitor, from models/: redaction, cue phrases, backchannels, speaking rate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from models.cues import find_cues, is_backchannel, repeats
from models.rate import SpeakingRateTracker
from models.redact import redact
from models.redact_call import CallRedactor
from models.transcriber import Word
from service.analysis.redaction import CallRedaction


@dataclass(frozen=True, slots=True)
class Cue:
    category: str
    text: str


class RateTracker(Protocol):
    def add(self, words: Sequence[tuple[str, float, float]]) -> tuple[float, float] | None:
        """Takes a transcript's words; when the recent rate is outside the normal range, returns it in words per
        minute with the seconds of speech it was judged over."""
        ...


@dataclass(frozen=True, slots=True)
class TextRules:
    """What the monitor needs from the text side (models/): injected, so the core has no model dependency."""

    redact: Callable[[str], str]
    find_cues: Callable[[str, str, str | None], Sequence[Cue]]
    is_backchannel: Callable[[str, str | None], bool]
    rate_tracker: Callable[[], RateTracker]
    repeats: Callable[[str, str], bool] = lambda text, heard: False
    """Whether a text only says back the other speaker's recent words (a detail repeated as they talk)."""
    redactor: Callable[[], CallRedaction] | None = None
    """One call's redaction memory, for numbers read across utterances; None: ``redact``, one text at a time."""


class _Rate:
    def __init__(self) -> None:
        self._tracker = SpeakingRateTracker()

    def add(self, words: Sequence[tuple[str, float, float]]) -> tuple[float, float] | None:
        reading = self._tracker.add(Word(w, s, e, 1.0) for w, s, e in words)
        return (reading.wpm, reading.speech_s) if reading is not None and reading.outside_range else None


def _cues(text: str, leg: str, language: str | None) -> list[Cue]:
    return [Cue(c.category, c.text) for c in find_cues(text, leg, language)]


def text_rules() -> TextRules:
    return TextRules(redact=redact, find_cues=_cues, is_backchannel=is_backchannel, rate_tracker=_Rate, repeats=repeats,
                     redactor=CallRedactor)
