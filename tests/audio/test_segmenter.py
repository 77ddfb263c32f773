"""Sample-exact behaviour of the per-leg segmenter and frame classifier."""

import numpy as np
from numpy.typing import NDArray

from audio.events import SpeechEnded, SpeechStarted
from audio.frames import FRAME, frame_levels_db
from audio.settings import VadSettings
from audio.vad import FrameClassifier, Segmenter
from tests.signals import leg, noise, vowel


def run(flags: str) -> list[SpeechStarted | SpeechEnded]:
    seg = Segmenter("customer", VadSettings())
    out: list[SpeechStarted | SpeechEnded] = []
    for i, c in enumerate(flags):
        ev = seg.step(i, c == "#")
        if ev is not None:
            out.append(ev)
    ev = seg.close(len(flags))
    if ev is not None:
        out.append(ev)
    return out


def test_onset_needs_100ms_of_voicing_and_starts_at_the_first_voiced_frame() -> None:
    events = run("....#####" + "." * 20)
    start, end = events
    assert isinstance(start, SpeechStarted) and start.start == 4 * FRAME and start.t == 9 * FRAME
    assert isinstance(end, SpeechEnded) and end.end == 9 * FRAME
    assert end.t == (8 + 15 + 1) * FRAME  # 300 ms of silence after the last voiced frame


def test_short_bursts_are_dropped() -> None:
    assert run("..###......##.........#" + "." * 20) == []


def test_gaps_under_300ms_are_bridged_longer_ones_split() -> None:
    bridged = run("#" * 10 + "." * 14 + "#" * 10 + "." * 20)
    assert [type(e) for e in bridged] == [SpeechStarted, SpeechEnded]
    split = run("#" * 10 + "." * 15 + "#" * 10 + "." * 20)
    assert [type(e) for e in split] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    assert isinstance(split[1], SpeechEnded) and split[1].end == 10 * FRAME and split[2].start == 25 * FRAME


def test_open_segment_is_closed_at_end_of_audio() -> None:
    events = run("#" * 10)
    assert isinstance(events[-1], SpeechEnded) and events[-1].end == 10 * FRAME


def classify(x: NDArray[np.int16]) -> list[bool]:
    c = FrameClassifier(VadSettings(), 8000)
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    levels = frame_levels_db(frames)
    return [c.is_speech(f.tobytes(), float(lv)) for f, lv in zip(frames, levels, strict=True)]


def test_classifier_rejects_silence_and_steady_noise() -> None:
    assert sum(classify(noise(-70, 2.0))) == 0
    assert sum(classify(noise(-40, 3.0))[50:]) <= 3  # once the noise floor is learnt


def test_classifier_accepts_voiced_sound_over_noise() -> None:
    flags = classify(leg(3.0, [(1.0, vowel(140, -25, 1.0))], noise_db=-60))
    assert sum(flags[55:95]) >= 36 and sum(flags[:45]) == 0 and sum(flags[110:]) == 0


def test_recent_audio_keeps_what_is_asked_across_refills() -> None:
    from audio.frames import RecentAudio

    r = RecentAudio(keep=1000, lead_in=100)
    x = np.arange(10_000, dtype=np.int16)
    for i in range(0, len(x), 160):
        r.append(np.stack([x[i: i + 160], -x[i: i + 160]]))
        view = r.view()
        end = min(i + 160, len(x))
        assert r.origin + view.shape[1] == end
        assert view.shape[1] >= min(1000, end + 100)
        assert np.array_equal(view[0, -50:], x[end - 50: end])
    assert np.array_equal(r.view()[1, -1000:], -x[-1000:])
