import numpy as np
import pytest

from audio.pitch import Yin
from audio.settings import PitchSettings
from tests.signals import noise, vowel


@pytest.mark.parametrize("f0", [75.0, 110.0, 180.0, 260.0, 380.0])
def test_yin_finds_the_fundamental_of_harmonic_sounds(f0: float) -> None:
    yin = Yin(PitchSettings(), 8000)
    x = vowel(f0, -20, 0.5).astype(np.float64)
    frames = np.stack([x[i: i + yin.span] for i in range(0, len(x) - yin.span, 160)])
    est, aperiodicity = yin.estimate(frames)
    assert np.all(np.abs(est / f0 - 1) < 0.01)
    assert np.all(aperiodicity < 0.1)


def test_yin_calls_noise_unvoiced() -> None:
    yin = Yin(PitchSettings(), 8000)
    x = noise(-20, 0.5).astype(np.float64)
    frames = np.stack([x[i: i + yin.span] for i in range(0, len(x) - yin.span, 160)])
    est, _ = yin.estimate(frames)
    assert np.isnan(est).mean() > 0.9


def test_yin_handles_no_frames() -> None:
    est, ap = Yin(PitchSettings(), 8000).estimate(np.zeros((0, 400)))
    assert est.shape == (0,) and ap.shape == (0,)
