"""What the service hands to a speech recogniser and what it gets back.

Audio stays in the form the call delivers it (16-bit PCM at the line rate, usually 8 kHz); the
recogniser converts it. ``sample_rate`` travels with the samples so nothing guesses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

AudioArray = npt.NDArray[np.int16] | npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Utterance:
    """One speech segment of one leg, cut by the VAD."""

    call_id: str
    leg: str
    start_s: float
    """Call audio time of the first sample."""
    end_s: float
    audio: AudioArray
    """Mono samples: int16 PCM, or float32 in [-1, 1]."""
    sample_rate: int = 8000
    language: str | None = None
    """ISO code ("en", "ru") when the call's language is known; None lets the recogniser decide."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    """Call audio time, seconds."""
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    """Plain recogniser output, not yet redacted; empty when the segment held no usable speech."""
    language: str
    words: tuple[Word, ...] = ()
    rejected: str | None = None
    """Why text was withheld ("no_speech", "repetition", ...), for counters and debugging."""
    extra: dict[str, float] = field(default_factory=dict)


class Transcriber(Protocol):
    """Blocking: the caller runs it in a worker thread, never on the event loop."""

    def transcribe_batch(self, utterances: Sequence[Utterance]) -> list[Transcript]:
        """One transcript per utterance, in the same order."""
        ...
