from __future__ import annotations

from models.guards import collapse_repeats, compression_ratio, too_many_words
from models.packing import RATE, owner, plan_windows


def test_short_utterances_share_a_window_in_order_with_gaps() -> None:
    windows = plan_windows([(0, 2 * RATE), (1, 3 * RATE), (2, RATE)], window_s=30.0, gap_s=1.0)
    assert len(windows) == 1
    pieces = windows[0].pieces
    assert [p.index for p in pieces] == [0, 1, 2]
    assert [p.offset for p in pieces] == [0, 3 * RATE, 7 * RATE]


def test_a_full_window_starts_the_next_one() -> None:
    windows = plan_windows([(i, 9 * RATE) for i in range(5)], window_s=30.0, gap_s=1.0)
    assert [[p.index for p in w.pieces] for w in windows] == [[0, 1, 2], [3, 4]]
    assert all(w.content_end <= 30 * RATE for w in windows)


def test_long_utterances_are_split_into_equal_chunks_of_their_own() -> None:
    windows = plan_windows([(0, 2 * RATE), (1, 70 * RATE), (2, 2 * RATE)], window_s=30.0, gap_s=1.0)
    assert [[p.index for p in w.pieces] for w in windows] == [[0], [1], [1], [1], [2]]
    chunks = [w.pieces[0] for w in windows[1:4]]
    assert chunks[0].source_start == 0 and chunks[-1].source_end == 70 * RATE
    assert all(c.length <= 30 * RATE for c in chunks)
    assert max(c.length for c in chunks) - min(c.length for c in chunks) <= len(chunks)


def test_words_go_to_the_nearest_piece() -> None:
    (window,) = plan_windows([(0, 2 * RATE), (1, 2 * RATE)], window_s=30.0, gap_s=1.0)
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
