"""Interruptions: one leg starting to talk over the other, mid-turn, and not letting go."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from audio.events import Backchannel, Interruption, Leg, other
from audio.frames import FRAME
from audio.settings import InterruptionSettings


@dataclass(slots=True)
class _Candidate:
    by: Leg
    start: int  # frame index of the newcomer's onset


class VoicedHistory:
    """One byte per frame per leg: whether it was voiced. An hour of call is 180 kB per leg."""

    def __init__(self) -> None:
        self.flags: dict[Leg, bytearray] = {"customer": bytearray(), "agent": bytearray()}
        self.sound: dict[Leg, bytearray] = {"customer": bytearray(), "agent": bytearray()}
        """Frames clearly above the leg's noise floor, voiced or not: soft speech on a noisy line."""

    def append(self, customer: bool, agent: bool, customer_sound: bool, agent_sound: bool) -> None:
        self.flags["customer"].append(customer)
        self.flags["agent"].append(agent)
        self.sound["customer"].append(customer_sound or customer)
        self.sound["agent"].append(agent_sound or agent)

    def last_sound(self, leg: Leg, first: int, last: int) -> int:
        return self.sound[leg].rfind(1, max(first, 0), last)

    def count(self, leg: Leg, first: int, last: int) -> int:
        """Voiced frames of ``leg`` in [first, last)."""
        return self.flags[leg].count(1, max(first, 0), last)

    def last_voiced(self, leg: Leg, first: int, last: int) -> int:
        """Index of the last voiced frame in [first, last), or -1."""
        return self.flags[leg].rfind(1, max(first, 0), last)


class InterruptionDetector:
    """Decides, ``min_burst_ms`` after a leg's onset during the other's turn, whether it was an interruption.

    Interruption: the other leg had been talking at least ``simultaneous_start_ms`` before the onset, both legs
    were voiced together for ``min_overlap_ms`` since it, and the newcomer is still talking at the decision.
    A newcomer that fell silent before that was a backchannel ("mm-hm", "okay"): never an interruption.
    """

    def __init__(self, settings: InterruptionSettings, history: VoicedHistory,
                 periodic: Callable[[Leg, int, int], int] | None = None) -> None:
        """``periodic(leg, first, last)``: the last frame in [first, last) with a clear pitch, or -1. Soft speech
        on a noisy line keeps its periodicity where its level no longer stands out; it is costly, so it is
        asked only for the few frames around a candidate."""
        ms = FRAME * 1000 // 8000
        self.simultaneous = settings.simultaneous_start_ms // ms
        self.min_overlap = settings.min_overlap_ms // ms
        self.burst = settings.min_burst_ms // ms
        self.still_talking = settings.still_talking_ms // ms
        self.pause = settings.mid_turn_pause_ms // ms
        self.continuing = settings.continuing_ms // ms
        self.resumed = settings.resumed_turn
        self._taken: dict[Leg, int] = {"customer": -(10**9), "agent": -(10**9)}
        self.history = history
        self.periodic = periodic
        self._pending: list[_Candidate] = []

    def on_onset(self, by: Leg, start: int, other_in_speech: bool, other_start: int) -> None:
        """``other_start``: onset of the other leg's current (or, if closed, last) segment."""
        if other_start > start - self.simultaneous and not (
                self.resumed and self.history.last_voiced(other(by), other_start - self.pause, other_start) >= 0):
            # Both began together, unless the other's segment only resumed its own turn (a soft stretch the
            # VAD lost closed it): it was voiced within ``mid_turn_pause_ms`` before this segment.
            return
        # Mid-turn: still in a segment, or paused briefly inside its turn (a soft stretch the VAD missed).
        recent = self.history.last_voiced(other(by), start - self.pause, start) >= 0
        if not (other_in_speech or recent) and self.periodic is not None:
            recent = self.periodic(other(by), start - self.pause // 2, start) >= 0
        if (other_in_speech or recent) and start >= self._taken[by] + self.burst:
            # One candidate per burst of the newcomer: a soft onset and the segmenter's may both report it.
            self._taken[by] = start
            self._pending.append(_Candidate(by, start))

    def step(self, i: int) -> list[Interruption | Backchannel]:
        """Called after frame ``i`` was appended to the history."""
        out: list[Interruption | Backchannel] = []
        if not self._pending:
            return out
        keep = []
        for c in self._pending:
            if i + 1 - c.start < self.burst:
                keep.append(c)
                continue
            end = c.start + self.burst
            of = other(c.by)
            # Overlap runs to the other's last frame of sound: at low SNR only some frames of speech pass the
            # VAD, so counting voiced frames would undercount it.
            last = self.history.last_sound(of, c.start, end)
            carrying_on = self.history.last_sound(of, c.start, c.start + self.continuing) >= 0
            if self.periodic is not None and (last + 1 - c.start < self.min_overlap or not carrying_on):
                last = max(last, self.periodic(of, c.start, end))
                carrying_on = carrying_on or self.periodic(of, c.start, c.start + self.continuing) >= 0
            overlap = last + 1 - c.start
            # The other must be carrying on through the onset, not starting anew (a backchannel of its own).
            overlap = overlap if carrying_on else 0
            talking = self.history.last_sound(c.by, end - self.still_talking, end) >= 0
            if talking and overlap >= self.min_overlap:
                out.append(Interruption(c.by, of, c.start * FRAME, overlap * FRAME, (i + 1) * FRAME))
            elif not talking and overlap > 0 and self.history.count(c.by, c.start, end) < self.burst:
                out.append(Backchannel(c.by, c.start * FRAME, (i + 1) * FRAME))
        self._pending = keep
        return out
