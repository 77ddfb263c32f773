"""The interruption detector as released before the floor model (commit 4a6c4d5), frozen as a benchmark
baseline: ``benchmarks.detectors`` scores it side by side with today's in the same run, on the same audio.

Not used by the product. Its rule: the other leg mid-turn at the onset (in a segment, or voiced or periodic
within 800 ms), and one second later the newcomer still sounding and the other's last sound at least 500 ms
past the onset (a span, pauses included, at any level over the line noise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from audio.analyzer import CallAnalyzer
from audio.events import Backchannel, Interruption, Leg, other
from audio.frames import FRAME
from audio.overlap import VoicedHistory
from audio.settings import AnalyzerSettings, InterruptionSettings


@dataclass(slots=True)
class _Candidate:
    by: Leg
    start: int


class PreviousInterruptionDetector:
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


def previous_analyzer() -> CallAnalyzer:
    """A ``CallAnalyzer`` with the previous interruption rules and what they saw: every frame over the line noise
    counted as sound (no own-voice gate), and raised voice without the provisional baseline's extra margin."""
    s = AnalyzerSettings()
    settings = replace(s, interruption=replace(s.interruption, own_voice_below_db=1e9),
                       customer_escalation=replace(s.customer_escalation, provisional_extra_db=0.0),
                       agent_escalation=replace(s.agent_escalation, provisional_extra_db=0.0))
    analyzer = CallAnalyzer(settings)
    analyzer.interruptions = PreviousInterruptionDetector(  # type: ignore[assignment]
        settings.interruption, analyzer.history, analyzer._last_periodic)
    return analyzer


PREVIOUS_FLAG_SCORE = 50
CRITICAL_RULES = frozenset({"customer_upset", "manager_request", "churn_threat"})


def previously_flagged(call: dict[str, object]) -> bool:
    """The flag as it was: escalation score 50 or a critical rule, nothing for a sustained raised voice."""
    flags = call.get("flags")
    critical = isinstance(flags, list) and bool(CRITICAL_RULES.intersection(flags))
    score = call.get("escalation_score")
    return (isinstance(score, int) and score >= PREVIOUS_FLAG_SCORE) or critical

