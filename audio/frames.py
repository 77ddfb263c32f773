"""Framing: the analysis works on 20 ms frames of 8 kHz audio, counted by index."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from audio.events import RATE

FRAME = RATE // 50
"""Samples in one 20 ms analysis frame (a size webrtcvad accepts)."""

SILENCE_DB = -100.0


def frame_levels_db(frames: NDArray[np.int16]) -> NDArray[np.float64]:
    """RMS level of each row of (n, FRAME) samples in dBFS. On telephone band this tracks LUFS within 0.1 dB."""
    x = frames.astype(np.float64)
    power = np.einsum("ij,ij->i", x, x) / (frames.shape[1] * 32768.0**2)
    levels: NDArray[np.float64] = np.maximum(10.0 * np.log10(np.maximum(power, 1e-12)), SILENCE_DB)
    return levels


class FrameBuffer:
    """Collects arbitrary chunks of two aligned legs and hands out whole frames."""

    def __init__(self) -> None:
        self._pending = np.zeros((2, 0), dtype=np.int16)

    def push(self, customer: NDArray[np.int16], agent: NDArray[np.int16]) -> NDArray[np.int16]:
        """Returns (2, n_frames, FRAME); keeps the remainder for the next call."""
        if len(customer) != len(agent):
            raise ValueError(f"legs must be aligned: {len(customer)} customer vs {len(agent)} agent samples")
        both = np.concatenate([self._pending, np.stack([customer, agent]).astype(np.int16, copy=False)], axis=1)
        n = both.shape[1] // FRAME
        self._pending = both[:, n * FRAME:]
        return both[:, : n * FRAME].reshape(2, n, FRAME)

    @property
    def pending(self) -> int:
        return int(self._pending.shape[1])


class RecentAudio:
    """The recent samples of both legs, appended chunk by chunk.

    Copies history only when the buffer fills (once per ``keep`` samples), not on every 20 ms chunk: a live
    call pushes fifty chunks a second. ``origin`` is the call sample held in column 0 of ``view()``.
    """

    def __init__(self, keep: int, lead_in: int) -> None:
        self.keep = keep
        self._buf = np.zeros((2, 2 * keep + lead_in), dtype=np.int16)
        self._len = lead_in  # a lead-in of silence, so the first frames can look back too
        self.origin = -lead_in

    def append(self, x: NDArray[np.int16]) -> None:
        n = x.shape[1]
        if self._len + n > self._buf.shape[1]:
            kept = min(self.keep, self._len)
            self._buf[:, :kept] = self._buf[:, self._len - kept: self._len]
            self.origin += self._len - kept
            self._len = kept
            if kept + n > self._buf.shape[1]:
                grown = np.zeros((2, 2 * (kept + n)), dtype=np.int16)
                grown[:, :kept] = self._buf[:, :kept]
                self._buf = grown
        self._buf[:, self._len: self._len + n] = x
        self._len += n

    def view(self) -> NDArray[np.int16]:
        return self._buf[:, : self._len]
