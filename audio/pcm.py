"""Sample decoding and rate conversion: bytes in, int16 numpy out. No audioop (gone in Python 3.13)."""

from __future__ import annotations

import numpy as np
import soxr
from numpy.typing import NDArray

Int16 = NDArray[np.int16]
Float32 = NDArray[np.float32]

MAX_CHANNELS = 8
MIN_RATE, MAX_RATE = 4000, 192000


class PcmError(ValueError):
    """Audio bytes that cannot be what the sender says they are."""


def _mulaw_table() -> Int16:
    # ITU-T G.711 mu-law expansion, the same integer table as the reference implementation.
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


MULAW_TABLE = _mulaw_table()
_MULAW_BIAS, _MULAW_CLIP = 0x84, 32635


def mulaw_decode(data: bytes) -> Int16:
    return MULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(pcm: Int16) -> bytes:
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _MULAW_CLIP) + _MULAW_BIAS
    exponent = np.floor(np.log2(mag >> 7 | 1)).astype(np.int32)
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return bytes(code.astype(np.uint8).tobytes())


def pcm16_decode(data: bytes) -> Int16:
    if len(data) % 2:
        raise PcmError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def decode(data: bytes, encoding: str) -> Int16:
    if encoding == "pcm16":
        return pcm16_decode(data)
    if encoding == "mulaw":
        return mulaw_decode(data)
    raise PcmError(f"unknown encoding {encoding!r}: use 'pcm16' or 'mulaw'")


def deinterleave(samples: Int16, channels: int) -> Int16:
    """(n*channels,) interleaved -> (channels, n). Trailing partial frames are an error, not silently cut."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise PcmError(f"channels must be 1..{MAX_CHANNELS}, got {channels}")
    if len(samples) % channels:
        raise PcmError(f"{len(samples)} samples do not split into {channels} channels")
    return samples.reshape(-1, channels).T.copy()


def to_float(pcm: Int16) -> Float32:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def to_int16(x: Float32 | NDArray[np.float64]) -> Int16:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def check_rate(rate: int) -> None:
    if not MIN_RATE <= rate <= MAX_RATE:
        raise PcmError(f"sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE}")


def resample(pcm: Int16, rate_in: int, rate_out: int) -> Int16:
    """Whole-signal rate conversion (offline files)."""
    check_rate(rate_in)
    if rate_in == rate_out or len(pcm) == 0:
        return pcm.astype(np.int16, copy=False)
    y = soxr.resample(to_float(pcm), rate_in, rate_out, quality="HQ")
    return to_int16(np.asarray(y, dtype=np.float32))


class StreamResampler:
    """Chunk-by-chunk rate conversion for live legs: keeps filter state, so chunk edges leave no clicks."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        check_rate(rate_in)
        self.rate_in, self.rate_out = rate_in, rate_out
        self._stream = None if rate_in == rate_out else soxr.ResampleStream(
            rate_in, rate_out, 1, dtype="float32", quality="HQ")

    def push(self, pcm: Int16, last: bool = False) -> Int16:
        if self._stream is None:
            return pcm
        y = self._stream.resample_chunk(to_float(pcm), last=last)
        return to_int16(np.asarray(y, dtype=np.float32))
