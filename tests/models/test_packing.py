from __future__ import annotations

import numpy as np
import pytest

from models.guards import collapse_repeats, compression_ratio, too_many_words
from models.packing import RATE, owner, plan_windows, split_at_pauses


def spans(*seconds: float) -> list[tuple[int, int, int]]:
    return [(i, 0, int(s * RATE)) for i, s in enumerate(seconds)]


def test_short_utterances_share_a_window_in_order_with_gaps() -> None:
    windows = plan_windows(spans(2, 3, 1), window_s=30.0, gap_s=1.0)
    assert len(windows) == 1
    pieces = windows[0].pieces
    assert [p.index for p in pieces] == [0, 1, 2]
    assert [p.offset for p in pieces] == [0, 3 * RATE, 7 * RATE]


def test_later_utterances_fill_earlier_windows_holes() -> None:
    windows = plan_windows(spans(9, 9, 9, 20, 2), window_s=30.0, gap_s=1.0)
    assert [[p.index for p in w.pieces] for w in windows] == [[0, 1, 2], [3, 4]]
    windows = plan_windows(spans(20, 20, 5), window_s=30.0, gap_s=1.0)
    assert [[p.index for p in w.pieces] for w in windows] == [[0, 2], [1]]
    assert all(w.content_end <= 30 * RATE for w in windows)


def test_spans_longer_than_a_window_are_refused() -> None:
    with pytest.raises(ValueError):
        plan_windows(spans(31), window_s=30.0)


def test_long_audio_is_cut_at_a_pause_near_the_middle() -> None:
    rng = np.random.default_rng(1)
    audio = rng.normal(0, 0.1, 50 * RATE).astype(np.float32)
    audio[int(26.0 * RATE) : int(26.3 * RATE)] = 0.0  # a pause 1 s after the ideal 25 s cut
    cuts = split_at_pauses(audio, 30 * RATE)
    assert len(cuts) == 2
    assert cuts[0][0] == 0 and cuts[-1][1] == audio.size and cuts[0][1] == cuts[1][0]
    assert 26.0 * RATE <= cuts[0][1] <= 26.3 * RATE
    assert split_at_pauses(audio[: 10 * RATE], 30 * RATE) == [(0, 10 * RATE)]


def test_very_long_audio_gets_window_sized_stretches() -> None:
    audio = np.ones(95 * RATE, dtype=np.float32)
    cuts = split_at_pauses(audio, 30 * RATE)
    assert len(cuts) == 4
    assert all(0 < end - start <= 30 * RATE for start, end in cuts)
    assert cuts[-1][1] == audio.size


def test_words_go_to_the_nearest_piece() -> None:
    (window,) = plan_windows(spans(2, 2), window_s=30.0, gap_s=1.0)
    assert owner(window, 1.0).index == 0
    assert owner(window, 2.2).index == 0  # in the gap, closer to the first
    assert owner(window, 2.8).index == 1
    assert owner(window, 29.0).index == 1


def test_repetition_loops_are_cut_back() -> None:
    words = "thank you thank you thank you thank you thank you so much".split()
    kept = [words[i] for i in collapse_repeats(words)]
    assert kept == "thank you thank you thank you so much".split()
    assert collapse_repeats(["no,", "no,", "no."]) == [0, 1, 2]
    assert collapse_repeats(["da"] * 10) == [0, 1, 2]


def test_compression_and_word_count_guards() -> None:
    assert compression_ratio("the same words " * 20) > 2.4
    assert compression_ratio("A gold ring will please most any girl.") < 2.4
    assert compression_ratio("") == 0.0
    assert too_many_words("one two three four five six seven eight nine ten eleven twelve", 1.0)
    assert not too_many_words("one two three four five", 2.0)


def test_repetitive_but_real_russian_prompts_are_not_loops() -> None:
    prompt = (
        "Для прослушивания следующего сообщения нажмите 6. Для повторного прослушивания сообщения "
        "нажмите 5. Для прослушивания предыдущего сообщения нажмите 4."
    )
    assert compression_ratio(prompt) < 2.4
    assert compression_ratio("спасибо за звонок " * 6) > 2.4
