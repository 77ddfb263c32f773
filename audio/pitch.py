"""Pitch by YIN (de Cheveigné & Kawahara 2002), vectorised over many frames at once.

Written out in numpy rather than calling librosa.yin so that it also returns YIN's aperiodicity (our voicing
decision) and runs causally on frames the caller chooses: speech frames only, in blocks.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from audio.settings import PitchSettings

F64 = NDArray[np.float64]


def _smooth_size(n: int) -> int:
    """The smallest number >= n with no prime factor above 5."""
    best = 1 << int(math.ceil(math.log2(n)))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


class Yin:
    def __init__(self, settings: PitchSettings, rate: int) -> None:
        self.rate = rate
        self.window = int(rate * settings.window_ms / 1000)
        self.tau_min = max(2, int(rate / settings.fmax_hz))
        self.tau_max = int(math.ceil(rate / settings.fmin_hz))
        self.span = self.window + self.tau_max
        """Samples each estimate needs: the frames handed to ``estimate`` are this long."""
        self.threshold = settings.voicing_threshold
        self.octave_ratio = settings.octave_ratio
        # The lags we keep (0..tau_max) never wrap around a circular correlation of length ``span``, so that
        # is all the padding needed; a 5-smooth size keeps pocketfft on its fast paths (400 vs 1024 here).
        self._nfft = _smooth_size(self.span)

    def estimate(self, x: F64) -> tuple[F64, F64]:
        """(n, span) samples -> (f0 Hz, aperiodicity); f0 is NaN where the frame is not voiced."""
        n = x.shape[0]
        if n == 0:
            return np.zeros(0), np.zeros(0)
        w, tmax = self.window, self.tau_max
        spec = np.fft.rfft(x, self._nfft, axis=1)
        head = np.fft.rfft(x[:, :w], self._nfft, axis=1)
        r = np.fft.irfft(np.conj(head) * spec, self._nfft, axis=1)[:, : tmax + 1]
        cs = np.zeros((n, x.shape[1] + 1))
        np.cumsum(x * x, axis=1, out=cs[:, 1:])
        taus = np.arange(tmax + 1)
        energy = cs[:, taus + w] - cs[:, taus]
        d = cs[:, w : w + 1] + energy - 2.0 * r
        d[:, 0] = 0.0
        np.maximum(d, 0.0, out=d)
        running = np.cumsum(d[:, 1:], axis=1)
        cmndf = np.ones_like(d)
        cmndf[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(running, 1e-12)

        band = cmndf[:, self.tau_min : tmax]
        idx = np.arange(band.shape[1])
        below = band < self.threshold
        has = below.any(axis=1)
        first = np.where(has, below.argmax(axis=1), 0)
        # YIN takes the first dip under the threshold, at its own minimum: confine the argmin to that run.
        after = idx[None, :] >= first[:, None]
        broken = np.cumsum(after & ~below, axis=1) > 0
        run = after & below & ~broken
        pick = np.where(has, np.argmin(np.where(run, band, np.inf), axis=1), np.argmin(band, axis=1))
        rows = np.arange(n)
        # On the phone the fundamental of low voices is filtered out (300 Hz high-pass) and the dip at half
        # the period can pass the threshold first: prefer the double lag when it is clearly more periodic.
        double = pick * 2 + self.tau_min
        in_range = double < band.shape[1]
        near = np.clip(np.where(in_range, double, 0)[:, None] + np.arange(-2, 3)[None, :], 0, band.shape[1] - 1)
        best = near[rows, np.argmin(band[rows[:, None], near], axis=1)]
        # Only for a weak first dip: on clean periodic sound both dips are near zero and the first is right.
        better = in_range & (band[rows, pick] > 0.1) & (band[rows, best] < self.octave_ratio * band[rows, pick])
        pick = np.where(better, best, pick)
        aperiodicity = band[rows, pick]
        # Parabolic refinement: at 8 kHz one lag step is ~2.5 % (0.4 semitone) at 200 Hz.
        lo = band[rows, np.maximum(pick - 1, 0)]
        hi = band[rows, np.minimum(pick + 1, band.shape[1] - 1)]
        mid = aperiodicity
        denom = lo - 2.0 * mid + hi
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (lo - hi) / np.where(denom == 0, 1.0, denom), 0.0)
        tau = pick + self.tau_min + np.clip(shift, -0.5, 0.5)
        f0 = np.where(has & (aperiodicity < self.threshold), self.rate / tau, np.nan)
        return f0, aperiodicity

