import numpy as np
import pytest

from audio.pcm import (
    MULAW_TABLE,
    PcmError,
    StreamResampler,
    check_rate,
    decode,
    deinterleave,
    mulaw_decode,
    mulaw_encode,
    pcm16_decode,
    resample,
)
from tests.signals import vowel


def test_mulaw_table_matches_g711_reference_points() -> None:
    assert MULAW_TABLE[0xFF] == 0 and MULAW_TABLE[0x7F] == 0
    assert MULAW_TABLE[0x00] == -32124 and MULAW_TABLE[0x80] == 32124
    assert MULAW_TABLE[0xFE] == 8 and MULAW_TABLE[0x7E] == -8


def test_mulaw_round_trip_is_within_one_quantisation_step() -> None:
    x = np.arange(-32768, 32768, 13, dtype=np.int16)
    y = mulaw_decode(mulaw_encode(x)).astype(int)
    step = np.maximum(np.abs(x.astype(int)) // 16, 8)  # mu-law steps grow with magnitude (~1/16)
    assert np.all(np.abs(y - x) <= step)


def test_every_mulaw_code_but_negative_zero_survives_decode_encode() -> None:
    codes = np.frombuffer(mulaw_encode(MULAW_TABLE), dtype=np.uint8)
    assert np.sum(codes == np.arange(256)) == 255


def test_pcm16_is_little_endian_and_rejects_odd_lengths() -> None:
    assert pcm16_decode(b"\x01\x00\xff\xff").tolist() == [1, -1]
    with pytest.raises(PcmError, match="even number"):
        pcm16_decode(b"\x01\x00\x02")


def test_decode_names_unknown_encodings() -> None:
    with pytest.raises(PcmError, match="unknown encoding 'opus'"):
        decode(b"", "opus")


def test_deinterleave_splits_channels_and_refuses_partial_frames() -> None:
    x = np.array([1, 10, 2, 20, 3, 30], dtype=np.int16)
    assert deinterleave(x, 2).tolist() == [[1, 2, 3], [10, 20, 30]]
    with pytest.raises(PcmError):
        deinterleave(x[:5], 2)
    with pytest.raises(PcmError):
        deinterleave(x, 0)


def test_absurd_rates_are_refused() -> None:
    for rate in (0, 100, 10_000_000):
        with pytest.raises(PcmError):
            check_rate(rate)


def test_resampling_keeps_pitch_and_duration() -> None:
    x = (np.sin(2 * np.pi * 440 * np.arange(16000) / 16000) * 10000).astype(np.int16)
    y = resample(x, 16000, 8000)
    assert len(y) == 8000
    peak = np.argmax(np.abs(np.fft.rfft(y.astype(float))))
    assert peak * 8000 / len(y) == pytest.approx(440, abs=2)


def test_stream_resampler_matches_length_in_chunks() -> None:
    x = vowel(150, -20, 1.0)
    r = StreamResampler(8000, 16000)
    out = np.concatenate([r.push(x[i: i + 160]) for i in range(0, len(x), 160)] + [r.push(x[:0], last=True)])
    assert abs(len(out) - 16000) <= 2
