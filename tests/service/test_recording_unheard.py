"""Speech that no transcript came for (dropped under overload, or failed) was never looked at by redaction: a
kept recording holds silence there, so a card number read while transcription was behind is not kept in the
clear."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import soundfile as sf

from tests.service.conftest import make_settings, native_call, wait_ended
from tests.service.test_redaction_live import Scripted, serving
from tests.signals import leg, vowel

BURST_S, STEP_S = 0.9, 1.6


class DropsSome(Scripted):
    """Answers the customer's segments in order: the ones in ``dropped`` as the scheduler does under overload
    (an empty transcript, ``rejected="dropped"``), the one in ``failed`` with an exception, the rest with a word."""

    def __init__(self, dropped: set[int], failed: set[int]) -> None:
        super().__init__()
        self.dropped, self.failed = dropped, failed

    def __call__(self, call: Any, seg: Any) -> asyncio.Future[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        n = self.n if seg.leg == "customer" else -1
        self.n += seg.leg == "customer"
        if n in self.failed:
            done.set_exception(RuntimeError("the model failed"))
            return done
        text, rejected = ("", "dropped") if n in self.dropped else ("hello", None)
        words = [SimpleNamespace(word=text, start=seg.start_s + 0.2, end=seg.end_s - 0.2)] if text else []
        done.set_result(SimpleNamespace(text=text, words=words, language="en", rejected=rejected))
        return done


async def test_speech_without_a_transcript_is_silent_in_the_recording(tmp_path: Path) -> None:
    starts = [1.0 + i * STEP_S for i in range(4)]
    customer = leg(starts[-1] + 3.0, [(s, vowel(180, -20, BURST_S)) for s in starts])
    agent = leg(len(customer) / 8000, [], seed=3)
    async with serving(make_settings(tmp_path, no_asr=False, recording="all"), DropsSome({1}, {2})) as srv:
        await native_call(srv, customer, agent, call_id="unheard")
        await wait_ended(srv, "unheard")
    wav, rate = sf.read(tmp_path / "recordings" / "unheard.wav", dtype="int16")
    loudest = [int(np.abs(wav[int(s * rate) + 400: int((s + BURST_S) * rate) - 400, 0]).max()) for s in starts]
    assert [level == 0 for level in loudest] == [False, True, True, False], loudest
