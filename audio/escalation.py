"""Raised voice: one leg's loudness and pitch against that same speaker's calm baseline."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from audio.events import Leg, RaisedVoice, RaisedVoiceEnded, RaisedVoiceSustained
from audio.frames import FRAME
from audio.settings import EscalationSettings


def semitones(hz: float) -> float:
    return 12.0 * math.log2(hz)


def median(values: list[float]) -> float:
    """Exact median of a short list, as ``np.median`` gives it, at a fraction of its per-call cost (~50 µs)."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return math.nan
    h = n // 2
    return v[h] if n % 2 else 0.5 * (v[h - 1] + v[h])


def active_level(levels: list[float], quantile: float = 0.5) -> float:
    """The level of a stretch of speech: this quantile of its frames' levels (the median by default)."""
    if quantile == 0.5:
        return median(levels)
    v = sorted(levels)
    return v[min(len(v) - 1, round(quantile * (len(v) - 1)))]


@dataclass(slots=True)
class _Frame:
    index: int
    level_db: float
    pitch_st: float  # NaN when unvoiced


class Baseline:
    """A speaker's calm level and pitch: the median over their first speech, then a slow drift.

    After the first ``full_frames`` it learns only from speech the tracker judged calm, and never during an
    episode, so an escalation cannot teach the baseline that shouting is normal.
    """

    def __init__(self, full_frames: int, drift: float = 0.01, spread_windows: int = 0,
                 quantile: float = 0.5) -> None:
        self.full_frames = full_frames
        self.quantile = quantile
        self.drift = drift
        self.spread_windows = spread_windows
        """Calm windows the spread is measured over, the most recent; 0: only those of the first baseline."""
        self._levels: list[float] = []
        self._pitches: list[float] = []
        self.level_db: float | None = None
        self.pitch_st: float | None = None
        self.frames = 0
        self._window_levels: list[float] = []
        self.spread_db = 0.0
        """How much this speaker's calm loudness swings from one stretch of speech to the next (robust sd)."""

    def observe_window(self, level_db: float) -> None:
        """A calm window's median level: its spread sets the bar."""
        if self.frames >= self.full_frames and not self.spread_windows:
            return
        self._window_levels.append(level_db)
        if self.spread_windows and len(self._window_levels) > self.spread_windows:
            del self._window_levels[0]
        if len(self._window_levels) >= 8:  # fewer stretches say little about a voice's range
            w = self._window_levels
            mid = median(w)
            # 1.4826 x the median absolute deviation estimates a standard deviation, unmoved by outliers.
            self.spread_db = 1.4826 * median([abs(x - mid) for x in w])

    @property
    def full(self) -> bool:
        return self.frames >= self.full_frames

    def learn(self, frames: list[_Frame]) -> None:
        if self.frames >= self.full_frames:
            self._drift(frames)
            return
        for f in frames:
            self._levels.append(f.level_db)
            if not math.isnan(f.pitch_st):
                self._pitches.append(f.pitch_st)
        self.frames += len(frames)
        self.level_db = active_level(self._levels, self.quantile) if self._levels else None
        self.pitch_st = median(self._pitches) if len(self._pitches) >= 10 else None
        if self.frames >= self.full_frames:
            self._levels, self._pitches = [], []

    def _drift(self, frames: list[_Frame]) -> None:
        alpha = self.drift
        levels = [f.level_db for f in frames]
        pitches = [f.pitch_st for f in frames if not math.isnan(f.pitch_st)]
        if levels and self.level_db is not None:
            self.level_db += alpha * (active_level(levels, self.quantile) - self.level_db)
        if len(pitches) >= 5 and self.pitch_st is not None:
            self.pitch_st += alpha * (median(pitches) - self.pitch_st)


class EscalationTracker:
    """Raised-voice episodes of one leg, decided block by block over its most recent voiced speech."""

    def __init__(self, leg: Leg, settings: EscalationSettings) -> None:
        self.leg = leg
        self.s = settings
        ms = FRAME * 1000 // 8000
        self.window_frames = settings.window_speech_ms // ms
        self.min_window = settings.window_min_speech_ms // ms
        self.span_frames = settings.window_span_ms // ms
        self.min_baseline = settings.baseline_min_speech_ms // ms
        self.clear_frames = settings.clear_ms // ms
        self.sustained = settings.sustained_ms // ms
        self.provisional = settings.provisional_speech_ms // ms
        self._sustained_said = False
        self.clear_silence = settings.clear_silence_ms // ms
        self.baseline = Baseline(settings.baseline_speech_ms // ms, settings.baseline_drift, settings.spread_windows,
                                 settings.level_quantile)
        self._recent: deque[_Frame] = deque()
        self.episode_start: int | None = None
        self._last_raised = 0
        self._calm_frames = 0
        self._last_speech = -1
        self._streak = 0
        self._strong_before = False
        """The previous block with speech was a strong rise on its own (``strong_rise_db``)."""
        self.delta_db = 0.0
        self.delta_st = 0.0


    def feed(self, frames: list[_Frame], now: int) -> list[RaisedVoice | RaisedVoiceSustained | RaisedVoiceEnded]:
        """``frames``: this block's speech frames; ``now``: index of the frame after the block."""
        out: list[RaisedVoice | RaisedVoiceSustained | RaisedVoiceEnded] = []
        recent = self._recent
        recent.extend(frames)
        while len(recent) > self.window_frames or (recent and recent[0].index < now - self.span_frames):
            recent.popleft()
        baseline = self.baseline
        if frames:
            self._last_speech = frames[-1].index
        if len(recent) < self.min_window:
            self._strong_before = False
            if self.episode_start is not None and now - self._last_speech > self.clear_silence:
                out.append(self._end(now))
            elif self.episode_start is None and not baseline.full:
                baseline.learn(frames)
            return out
        window_level = active_level([f.level_db for f in recent], self.s.level_quantile)
        if baseline.level_db is None or baseline.frames < self.min_baseline:
            # The first speech of a call is taken as the speaker's calm voice, as a listener would.
            self._strong_before = False
            baseline.learn(frames)
            baseline.observe_window(window_level)
            return out
        voiced = [f.pitch_st for f in recent if f.pitch_st == f.pitch_st]  # NaN: unvoiced
        self.delta_db = window_level - baseline.level_db
        self.delta_st = (median(voiced) - baseline.pitch_st
                         if baseline.pitch_st is not None and len(voiced) >= len(recent) // 4 else 0.0)

        s = self.s
        # A speaker whose calm level swings widely (a real headset, a varying line) needs a higher bar.
        margin = s.spread_z * baseline.spread_db
        extra = 0.0 if baseline.frames >= self.provisional else s.provisional_extra_db
        loud_alone = max(s.loudness_db, margin + s.loudness_db - s.loudness_with_pitch_db) + extra
        loud_with_pitch = max(s.loudness_with_pitch_db, margin) + extra
        raised = self.delta_db >= loud_alone or (self.delta_db >= loud_with_pitch and self.delta_st >= s.pitch_st)
        calm = self.delta_db < loud_with_pitch / 2 and self.delta_st < s.pitch_st / 2
        if self.episode_start is None:
            block_db = (active_level([f.level_db for f in frames], s.level_quantile) - baseline.level_db
                        if frames else None)
            if not raised:
                self._streak = 0
            elif not s.confirm_loud_blocks or block_db is None:
                self._streak += 1
            else:
                # The window's loudness comes from its loudest frames: a confirming block of speech must not be
                # calm itself, or one loud phrase would carry the window through the calm speech after it.
                self._streak = self._streak + 1 if block_db >= loud_with_pitch / 2 else 0
            strong = s.strong_rise_db > 0 and block_db is not None and block_db >= max(s.strong_rise_db, loud_alone)
            if raised and strong and self._strong_before:
                self._streak = max(self._streak, s.confirm_blocks)
            if block_db is not None:
                self._strong_before = strong
            if raised and self._streak >= s.confirm_blocks:
                self.episode_start = self._onset(recent, baseline.level_db)
                self._last_raised = recent[-1].index
                self._calm_frames = 0
                self._sustained_said = False
                out.append(RaisedVoice(self.leg, self.episode_start * FRAME, self.delta_db, self.delta_st,
                                       now * FRAME))
            elif not raised:
                if baseline.full and s.spread_windows and frames and self.delta_db < s.loudness_with_pitch_db:
                    baseline.observe_window(window_level)
                # The block itself calm too: the window's loudest frames may be older than this block.
                if not baseline.full or (calm and block_db is not None and block_db < s.loudness_with_pitch_db / 2):
                    if not baseline.full or not s.spread_windows:
                        baseline.observe_window(window_level)
                    baseline.learn(frames)
            return out
        # Within an episode the plain bars hold, without the margin for the speaker's calm spread: that margin
        # keeps a varied voice from starting an episode on its own swings, but an angry turn that swings between
        # shouted and spoken phrases is still the same raised voice (hysteresis).
        still_raised = raised or self.delta_db >= s.loudness_db + extra or (
            self.delta_db >= s.loudness_with_pitch_db + extra and self.delta_st >= s.pitch_st)
        if still_raised or not calm:
            self._calm_frames = 0
            if still_raised:
                self._last_raised = recent[-1].index
                span = self._last_raised + 1 - self.episode_start
                if not self._sustained_said and span >= self.sustained:
                    self._sustained_said = True
                    out.append(RaisedVoiceSustained(self.leg, self.episode_start * FRAME, span * FRAME, now * FRAME))
        else:
            self._calm_frames += len(frames)
            if self._calm_frames >= self.clear_frames:
                out.append(self._end(now))
        return out

    def _onset(self, recent: deque[_Frame], base_level: float) -> int:
        """The first frame of the window's elevated stretch: where the episode began, not where we knew."""
        threshold = base_level + self.s.loudness_with_pitch_db
        for f in recent:
            if f.level_db >= threshold:
                return f.index
        return recent[0].index

    def _end(self, now: int) -> RaisedVoiceEnded:
        start = self.episode_start if self.episode_start is not None else now
        self.episode_start = None
        self._calm_frames = 0
        return RaisedVoiceEnded(self.leg, start * FRAME, (self._last_raised + 1) * FRAME, now * FRAME)

    def close(self, now: int) -> list[RaisedVoiceEnded]:
        return [self._end(now)] if self.episode_start is not None else []
