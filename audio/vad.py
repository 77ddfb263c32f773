"""Per-leg speech segmentation: webrtcvad decisions, gated by level, with onset/offset hysteresis."""

from __future__ import annotations

from collections import deque

import webrtcvad

from audio.events import Leg, SpeechEnded, SpeechStarted
from audio.frames import FRAME
from audio.settings import VadSettings


class NoiseFloor:
    """Tracks a leg's background level: falls at once to quieter frames, climbs slowly through speech."""

    def __init__(self, rise_db_per_frame: float) -> None:
        self.rise = rise_db_per_frame
        self.db: float | None = None

    def update(self, level_db: float) -> float:
        if self.db is None or level_db < self.db:
            self.db = level_db
        else:
            self.db += self.rise
        return self.db


class SpeechLevel:
    """A leg's loud-speech level: a peak tracker that decays slowly, updated once per block.

    webrtcvad is not level-invariant: on speech at -50 dBFS it says "silence" almost every frame. The gain
    derived from this level brings every leg to a working level before the VAD sees it.
    """

    def __init__(self, target_db: float, max_gain_db: float, decay_db_per_s: float, noise_ceiling_db: float) -> None:
        self.target_db = target_db
        self.noise_ceiling_db = noise_ceiling_db
        self.max_gain_db = max_gain_db
        self.decay = decay_db_per_s
        self.peak_db: float | None = None

    def update(self, block_peak_db: float, block_s: float) -> None:
        if self.peak_db is None:
            self.peak_db = block_peak_db
        else:
            self.peak_db = max(block_peak_db, self.peak_db - self.decay * block_s)

    def gain(self, floor_db: float | None) -> float:
        if self.peak_db is None:
            return 1.0
        # Never lift the line noise past the ceiling: webrtcvad calls loud noise speech.
        room = self.max_gain_db if floor_db is None else self.noise_ceiling_db - floor_db
        gain_db = max(min(self.target_db - self.peak_db, self.max_gain_db, room), 0.0)
        return float(10.0 ** (gain_db / 20.0))


class FrameClassifier:
    """Decides whether one 20 ms frame of a leg is speech: webrtcvad AND clearly above the noise floor."""

    def __init__(self, settings: VadSettings, rate: int) -> None:
        self.settings = settings
        self.rate = rate
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self.floor = NoiseFloor(settings.floor_rise_db_per_s * FRAME / rate)

    def is_speech(self, frame: bytes, level_db: float) -> bool:
        floor = self.floor.update(level_db)
        gate = max(floor + self.settings.snr_gate_db, self.settings.absolute_floor_db)
        # The cheap level test first: the VAD call is the costlier one and most frames are silence.
        return level_db > gate and bool(self._vad.is_speech(frame, self.rate))


class Segmenter:
    """Turns per-frame speech flags into speech segments.

    A segment opens once ``onset_ms`` of voiced frames fall within ``onset_window_ms`` (so clicks and short
    bursts never open one) and starts at the first of those frames; it closes after ``hangover_ms`` without
    a voiced frame and ends where the last voiced frame ended. Frame indices in, sample counts out.
    """

    def __init__(self, leg: Leg, settings: VadSettings) -> None:
        self.leg = leg
        self.onset_frames = max(1, settings.onset_ms // 20)
        self.window = max(self.onset_frames, settings.onset_window_ms // 20)
        self.hangover = max(1, settings.hangover_ms // 20)
        self._recent: deque[int] = deque()
        self.in_speech = False
        self.start_frame = 0
        self.last_voiced = -1

    def step(self, i: int, voiced: bool) -> SpeechStarted | SpeechEnded | None:
        if voiced:
            self.last_voiced = i
        if self.in_speech:
            if i - self.last_voiced >= self.hangover:
                self.in_speech = False
                return SpeechEnded(self.leg, self.start_frame * FRAME, (self.last_voiced + 1) * FRAME,
                                   (i + 1) * FRAME)
            return None
        recent = self._recent
        if voiced:
            recent.append(i)
        while recent and recent[0] <= i - self.window:
            recent.popleft()
        if len(recent) >= self.onset_frames:
            self.in_speech = True
            self.start_frame = recent[0]
            recent.clear()
            return SpeechStarted(self.leg, self.start_frame * FRAME, (i + 1) * FRAME)
        return None

    def close(self, i: int) -> SpeechEnded | None:
        """End of audio: an open segment ends where its speech did."""
        if not self.in_speech:
            return None
        self.in_speech = False
        return SpeechEnded(self.leg, self.start_frame * FRAME, (self.last_voiced + 1) * FRAME, i * FRAME)
