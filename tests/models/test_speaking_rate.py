from __future__ import annotations

from models.rate import RateSettings, SpeakingRateTracker, words_per_minute
from models.transcriber import Word


def steady(count: int, per_second: float, start: float = 0.0) -> list[Word]:
    step = 1.0 / per_second
    return [Word(f"w{i}", start + i * step, start + i * step + step * 0.8, 0.9) for i in range(count)]


def test_normal_rate_is_in_range() -> None:
    reading = words_per_minute(steady(60, 2.5))  # 150 wpm over 24 s
    assert reading is not None
    assert 140 <= reading.wpm <= 160
    assert not reading.outside_range


def test_fast_and_slow_are_reported() -> None:
    fast = words_per_minute(steady(100, 4.0))
    slow = words_per_minute(steady(36, 1.2))
    assert fast is not None and fast.too_fast and not fast.too_slow
    assert slow is not None and slow.too_slow and not slow.too_fast


def test_pauses_do_not_make_speech_slow() -> None:
    words = steady(30, 2.5) + steady(30, 2.5, start=60.0)
    reading = words_per_minute(words)
    assert reading is not None and not reading.too_slow


def test_too_little_speech_gives_no_reading() -> None:
    assert words_per_minute(steady(5, 2.5)) is None
    assert words_per_minute([]) is None
    # A greeting rattled off: 21 words in 6 s is 210 words a minute, but 6 s of talk says nothing of a habit.
    assert words_per_minute(steady(21, 3.5)) is None
    reading = words_per_minute(steady(84, 3.5))  # the same pace for 24 s
    assert reading is not None and reading.too_fast and reading.speech_s >= 20


def test_thresholds_are_settings() -> None:
    reading = words_per_minute(steady(60, 2.5), RateSettings(low_wpm=160, high_wpm=200))
    assert reading is not None and reading.too_slow


def test_tracker_forgets_words_outside_the_window() -> None:
    tracker = SpeakingRateTracker(RateSettings(window_s=30.0))
    assert tracker.add(steady(100, 4.0)) is not None  # fast, 25 s
    reading = tracker.add(steady(60, 2.5, start=100.0))  # later, normal pace
    assert reading is not None
    assert reading.words == 60 and not reading.outside_range
