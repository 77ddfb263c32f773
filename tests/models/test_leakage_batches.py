"""benchmarks.leakage builds the batches the live scheduler would, and benchmarks.asr's variants parse."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.asr import variant
from benchmarks.leakage import batches
from models.transcriber import Utterance
from models.whisper import DecodeSettings, isolation_named


def utt(call: str, seconds: float) -> Utterance:
    return Utterance(call, "customer", 0.0, seconds, np.zeros(int(seconds * 16000), np.float32), 16000, "en")


def test_window_batches_hold_one_call_each_with_call_isolation_and_keep_the_order() -> None:
    utts = [utt(c, s) for c, s in [("a", 6), ("b", 6), ("a", 6), ("c", 20), ("a", 6), ("b", 6), ("a", 6), ("a", 6)]]
    shared = batches(utts, "window", 30.0, 0.5)
    assert shared == [[0, 1, 2], [3, 4], [5, 6, 7]]
    assert [k for b in shared for k in b] == list(range(len(utts)))
    assert all(sum(utts[k].end_s + 0.5 for k in b) <= 30.0 or len(b) == 1 for b in shared)
    per_call = batches(utts, "window", 30.0, 0.5, per_call=4)
    assert all(len({utts[k].call_id for k in b}) == 1 for b in per_call)
    assert per_call == [[0, 2, 4, 6], [1, 5], [3], [7]]
    assert batches(utts, "3", 30.0, 0.5) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    # A lone worker with call isolation: the oldest calls' utterances, up to the limit, in order.
    assert batches(utts, "32", 30.0, 0.5, per_call=2) == [[0, 1, 2, 4, 5, 6, 7], [3]]
    assert batches(utts, "4", 30.0, 0.5, per_call=2) == [[0, 1, 2, 4], [3, 5], [6, 7]]


def test_variants() -> None:
    base = DecodeSettings()
    assert variant("shared/time", base) == DecodeSettings(isolation="shared", ownership="time")
    assert variant("call@0.5", base) == DecodeSettings(gap_s=0.5)
    assert variant("call~0", base) == DecodeSettings(fit_s=0.0)
    assert variant("shared@2~6", base) == DecodeSettings(isolation="shared", gap_s=2.0, fit_s=6.0)
    assert variant("call~3:15", base) == DecodeSettings(fit_s=3.0, min_fit_s=15.0)
    with pytest.raises(SystemExit):
        variant("nobody", base)
    assert isolation_named("shared") == "shared"
    with pytest.raises(ValueError, match="isolation must be one of"):
        isolation_named("none")
