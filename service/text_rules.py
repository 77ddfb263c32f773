"""The text side of the per-call monitor, from models/: redaction, cue phrases, backchannels, speaking rate."""

from __future__ import annotations

from collections.abc import Sequence

from models.cues import find_cues, is_backchannel, repeats
from models.rate import SpeakingRateTracker
from models.redact import redact
from models.redact_call import CallRedactor
from models.transcriber import Word
from service.monitor import Cue, TextRules


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
