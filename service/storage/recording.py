"""Call recordings: raw stereo PCM appended while the call runs, kept as a WAV only when policy says so.

All methods block (file I/O); the pipeline runs them through the writer. Audio is deleted unless the
recording policy asks to keep it, and kept files expire after the retention period.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from audio.events import RATE

FRAME_S = 0.01
PAUSE_S = 0.08
"""Quiet this long ends a word: a silenced span is widened to the pauses around it."""
WIDEN_MAX_S = 0.6
"""How far a silenced span may grow on each side to reach a pause (word timings are off by less than this)."""
log = logging.getLogger("callwatch.recording")


class RawRecorder:
    def __init__(self, directory: Path, call_id: str) -> None:
        self.directory = directory
        self.raw = directory / f"{call_id}.part"
        self.wav = directory / f"{call_id}.wav"

    def append(self, interleaved: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.raw.open("ab") as f:
            f.write(interleaved)

    def finish(self, keep: bool, silence: Sequence[tuple[float, float]] = ()) -> Path | None:
        """Turn the raw file into a stereo WAV (channel 0 customer, 1 agent) or delete it.

        ``silence``: call-time spans (seconds) of redacted words, silenced on both channels before the WAV
        exists, so the only file ever kept never holds them (the other leg may carry them as echo)."""
        if not self.raw.exists():
            return None
        try:
            if not keep:
                return None
            pcm = np.fromfile(self.raw, dtype="<i2")
            pcm = pcm[: len(pcm) // 2 * 2].reshape(-1, 2)
            silence_spans(pcm, widen_to_pauses(pcm, silence))
            sf.write(self.wav, pcm, RATE, subtype="PCM_16")
            return self.wav
        finally:
            self.raw.unlink(missing_ok=True)


def silence_spans(pcm: NDArray[np.int16], spans: Sequence[tuple[float, float]], rate: int = RATE) -> int:
    """Zero ``spans`` (seconds) of ``pcm`` (samples x channels) in place; returns the samples silenced."""
    n = 0
    for start, end in spans:
        a, b = max(0, int(start * rate)), min(len(pcm), int(np.ceil(end * rate)))
        if b > a:
            pcm[a:b] = 0
            n += b - a
    return n


def widen_to_pauses(pcm: NDArray[np.int16], spans: Sequence[tuple[float, float]],
                    rate: int = RATE) -> list[tuple[float, float]]:
    """``spans`` (seconds) each grown, up to ``WIDEN_MAX_S`` a side, to the nearest pause of ``PAUSE_S`` on every
    channel: a word that a recogniser timed a little short is silenced whole, never left half audible.

    A frame is quiet below twice the channel's noise floor (its 10th-percentile frame level), at least 30."""
    frame = max(1, int(FRAME_S * rate))
    n = len(pcm) // frame
    if not spans or n == 0:
        return list(spans)
    x = pcm[: n * frame].astype(np.float64).reshape(n, frame, -1)
    level = np.sqrt((x * x).mean(axis=1))  # frames x channels
    quiet = (level <= np.maximum(30.0, 2.0 * np.percentile(level, 10, axis=0))).all(axis=1)
    need, most = max(1, round(PAUSE_S / FRAME_S)), round(WIDEN_MAX_S / FRAME_S)

    def left(a: int) -> int:
        """Where the sound running on into frame ``a`` from before it began."""
        run = 0
        for j in range(a - 1, max(-1, a - 1 - most - need), -1):
            run = run + 1 if quiet[j] else 0
            if run >= need:
                return j + need
        return max(0, a - most)

    def right(b: int) -> int:
        """Where the sound running on from before frame ``b`` ends."""
        run = 0
        for j in range(b, min(n, b + most + need)):
            run = run + 1 if quiet[j] else 0
            if run >= need:
                return j - need + 1
        return min(n, b + most)

    out = []
    for start, end in spans:
        a, b = int(start * rate) // frame, int(np.ceil(end * rate / frame))
        a2 = left(a) if 0 < a <= n else a
        b2 = right(b) if 0 <= b < n else b
        out.append((min(start, a2 * frame / rate), max(end, b2 * frame / rate)))
    return out


def sweep_orphans(directory: Path) -> int:
    """Raw files left by a crashed process are unfinished audio nobody asked to keep."""
    n = 0
    for part in directory.glob("*.part") if directory.exists() else ():
        part.unlink(missing_ok=True)
        n += 1
    return n


def expire(paths: list[str], now: float | None = None) -> int:
    n = 0
    for p in paths:
        try:
            os.unlink(p)
            n += 1
        except FileNotFoundError:
            pass
    if n:
        log.info("deleted %d expired recordings at %s", n, time.ctime(now))
    return n
