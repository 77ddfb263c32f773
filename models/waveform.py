"""Turn line audio into what Whisper's feature extractor expects: mono float32 at 16 kHz."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

from models.transcriber import AudioArray

WHISPER_RATE = 16000


def to_whisper_rate(audio: AudioArray, sample_rate: int) -> npt.NDArray[np.float32]:
    if audio.dtype == np.int16:
        samples = audio.astype(np.float32) / 32768.0
    else:
        samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono audio, got shape {samples.shape}")
    if sample_rate == WHISPER_RATE or samples.size == 0:
        return samples
    out = soxr.resample(samples, sample_rate, WHISPER_RATE, quality="HQ")
    return np.asarray(out, dtype=np.float32)
