"""The service side of redaction with call memory (``models/redact_call.py``).

A number read across several utterances is known to be sensitive only once enough of it is heard. The
utterances before that were already shown; ``utterance_redacted`` replaces each of them on screens and in the
store. Storage waits for the number to end (``HeldUtterances``), so the store never holds the clear digits;
screens do not wait, so transcripts are not delayed, and show at most the first digits until they are retracted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from audio.events import LEGS

Words = tuple[tuple[str, float, float], ...]


class RedactedText(Protocol):
    @property
    def leg(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def text(self) -> str: ...
    @property
    def words(self) -> Words: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def silence(self) -> tuple[tuple[float, float], ...]: ...


class RedactionUpdate(Protocol):
    @property
    def utterance(self) -> RedactedText: ...
    @property
    def revised(self) -> Sequence[RedactedText]: ...


class CallRedaction(Protocol):
    """One call's redaction memory: ``models.redact_call.CallRedactor``."""

    def add(self, leg: str, start: float, end: float, text: str, words: Words = ()) -> RedactionUpdate: ...

    def pending(self, leg: str, start: float, now: float) -> bool: ...

    def guarding(self, leg: str, now: float) -> bool: ...


def for_listeners(frames: NDArray[np.int16], redactor: CallRedaction | None, now: float) -> bytes:
    """Live audio (samples x legs) as supervisors may hear it: a leg that may be reading a card number or the
    like (a cue for one was said, or its last words were digits that may go on) is silent, as it is in the
    recording. Only the words make that known, so the first group of a number said with no cue before it may be
    heard (one transcription delay), never the rest."""
    if redactor is not None:
        held = [k for k, leg in enumerate(LEGS) if redactor.guarding(leg, now)]
        if held:
            frames = frames.copy()
            frames[:, held] = 0
    return frames.astype("<i2", copy=False).tobytes()


@dataclass(frozen=True, slots=True)
class UtteranceRedacted:
    """Replaces the ``utterance`` of the same call, leg and start: a number it held turned out sensitive (or
    digits hidden with one turned out to be an amount said after it)."""

    leg: str
    start: float
    end: float
    text: str
    language: str
    t: float
    words: Words
    tags: tuple[str, ...]
    silenced: tuple[tuple[float, float], ...]
    type: Literal["utterance_redacted"] = "utterance_redacted"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "leg": self.leg, "start": round(self.start, 3), "end": round(self.end, 3),
                "text": self.text, "language": self.language, "tags": list(self.tags),
                "words": [{"word": w, "start": round(s, 3), "end": round(e, 3)} for w, s, e in self.words],
                "silenced": [[round(s, 3), round(e, 3)] for s, e in self.silenced], "t": round(self.t, 3)}


def replaced(utterance: dict[str, Any], redaction: dict[str, Any]) -> dict[str, Any]:
    """The utterance event as ``redaction`` rewrites it (its ``t`` kept: when it was first shown)."""
    out = {**utterance, "text": redaction["text"]}
    if redaction.get("words"):
        out["words"] = redaction["words"]
    else:
        out.pop("words", None)
    return out


def same_utterance(utterance: dict[str, Any], redaction: dict[str, Any]) -> bool:
    return (utterance.get("type") == "utterance" and utterance.get("leg") == redaction.get("leg")
            and utterance.get("start") == redaction.get("start"))


def apply_redactions(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A call's events as they stand after it: each utterance in its final, redacted form."""
    out = list(events)
    for ev in events:
        if ev.get("type") == "utterance_redacted":
            out = [replaced(u, ev) if same_utterance(u, ev) else u for u in out]
    return out


class HeldUtterances:
    """Utterance events kept from the store while the number they end with may still run on."""

    def __init__(self) -> None:
        self._held: list[tuple[int, dict[str, Any], float, float]] = []  # (seq, event, start, held at)
        self.delays: list[float] = []
        """Call seconds each held utterance waited for storage."""

    def hold(self, seq: int, ev: dict[str, Any], start: float, now: float) -> None:
        """``start``: the utterance's start as the redactor knows it (monitor time)."""
        self._held.append((seq, ev, start, now))

    def revise(self, redaction: dict[str, Any]) -> None:
        self._held = [(seq, replaced(ev, redaction) if same_utterance(ev, redaction) else ev, start, at)
                      for seq, ev, start, at in self._held]

    def release(self, pending: Callable[[str, float, float], bool] | None, now: float,
                *, everything: bool = False) -> list[tuple[int, dict[str, Any]]]:
        """The held events no longer ``pending(leg, start, now)`` (all of them with ``everything``)."""
        out, keep = [], []
        for seq, ev, start, at in self._held:
            if everything or pending is None or not pending(ev["leg"], start, now):
                out.append((seq, ev))
                self.delays.append(max(0.0, now - at))
            else:
                keep.append((seq, ev, start, at))
        self._held = keep
        return out

    def __len__(self) -> int:
        return len(self._held)
