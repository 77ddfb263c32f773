"""Synthetic test signals with known timing, level and pitch."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

RATE = 8000


def vowel(f0: float, db: float, seconds: float, *, phase: int = 0) -> NDArray[np.int16]:
    """A voiced, speech-like sound: harmonics of ``f0`` up to 3.4 kHz with a 4 Hz syllable-rate envelope."""
    t = np.arange(int(RATE * seconds)) / RATE
    x = sum((1.0 / k) * np.sin(2 * np.pi * f0 * k * t + k + phase) for k in range(1, int(3400 / f0)))
    x = np.asarray(x) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    x /= np.sqrt(np.mean(x**2))
    return (x * 10 ** (db / 20) * 32768).astype(np.int16)


def noise(db: float, seconds: float, seed: int = 0) -> NDArray[np.int16]:
    x = np.random.default_rng(seed).normal(size=int(RATE * seconds)) * 10 ** (db / 20)
    return (x * 32768).astype(np.int16)


def leg(total_s: float, parts: list[tuple[float, NDArray[np.int16]]], noise_db: float = -70.0,
        seed: int = 0) -> NDArray[np.int16]:
    """A leg of ``total_s`` seconds of faint noise with each (start_s, sound) laid in."""
    x = noise(noise_db, total_s, seed).astype(np.int32)
    for start, sound in parts:
        a = int(start * RATE)
        x[a: a + len(sound)] += sound[: len(x) - a]
    return np.clip(x, -32768, 32767).astype(np.int16)
