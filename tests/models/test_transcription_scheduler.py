"""TranscriptionScheduler with a fake transcriber whose worker thread the test opens and closes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from models.transcriber import Transcript, Utterance
from service.live.transcription import TranscriptionScheduler


class GatedTranscriber:
    """Blocks in the worker thread until the test opens the gate, like a slow model would."""

    def __init__(self, *, fail: bool = False) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail = fail

    def transcribe_batch(self, utterances: Sequence[Utterance]) -> list[Transcript]:
        self.threads.add(threading.current_thread().name)
        self.batches.append([u.call_id for u in utterances])
        self.entered.set()
        self.gate.wait(timeout=10)
        if self.fail:
            raise RuntimeError("model exploded")
        return [Transcript(f"text of {u.call_id}", u.language or "en") for u in utterances]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def utt(call_id: str) -> Utterance:
    return Utterance(call_id, "customer", 0.0, 1.0, np.zeros(8000, dtype=np.int16), 8000, "en")


async def wait_entered(fake: GatedTranscriber) -> None:
    await asyncio.to_thread(fake.entered.wait, 10)
    fake.entered.clear()


async def test_results_come_back_in_order_and_off_the_loop() -> None:
    fake = GatedTranscriber()
    fake.gate.set()
    scheduler = TranscriptionScheduler(fake)
    futures = [scheduler.submit(utt(f"c{i}")) for i in range(3)]
    results = await asyncio.gather(*futures)
    assert [r.text for r in results] == ["text of c0", "text of c1", "text of c2"]
    assert threading.current_thread().name not in fake.threads
    assert scheduler.stats().processed == 3
    await scheduler.aclose()


async def test_waiting_utterances_are_gathered_into_one_batch_oldest_first() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake, max_batch=3)
    first = scheduler.submit(utt("a"))
    await wait_entered(fake)
    rest = [scheduler.submit(utt(name)) for name in ("b", "c", "d", "e")]
    assert scheduler.stats().queued == 4
    assert scheduler.stats().in_flight == 1
    fake.gate.set()
    await asyncio.gather(first, *rest)
    assert fake.batches == [["a"], ["b", "c", "d"], ["e"]]
    stats = scheduler.stats()
    assert (stats.processed, stats.batches, stats.queued, stats.dropped) == (5, 3, 0, 0)
    await scheduler.aclose()


async def test_submit_never_blocks_and_a_full_queue_drops_the_oldest() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake, max_queue=2)
    busy = scheduler.submit(utt("busy"))
    await wait_entered(fake)
    waiting = [scheduler.submit(utt(name)) for name in ("old", "mid", "new")]
    # "old" was pushed out by "new" while the worker was still busy.
    assert waiting[0].done()
    assert waiting[0].result().rejected == "dropped"
    assert scheduler.stats().dropped == 1
    fake.gate.set()
    results = await asyncio.gather(busy, *waiting)
    assert [r.text for r in results] == ["text of busy", "", "text of mid", "text of new"]
    await scheduler.aclose()


async def test_utterances_older_than_max_lag_are_skipped_and_counted() -> None:
    fake = GatedTranscriber()
    clock = Clock()
    scheduler = TranscriptionScheduler(fake, max_lag_s=5.0, clock=clock)
    busy = scheduler.submit(utt("busy"))
    await wait_entered(fake)
    stale = scheduler.submit(utt("stale"))
    clock.now += 4.0
    fresh = scheduler.submit(utt("fresh"))
    assert scheduler.stats().lag_s == pytest.approx(4.0)
    clock.now += 2.0  # "stale" has now waited 6 s, "fresh" 2 s
    fake.gate.set()
    assert (await stale).rejected == "dropped"
    assert (await fresh).text == "text of fresh"
    await busy
    assert scheduler.stats().dropped == 1
    assert ["stale"] not in fake.batches
    await scheduler.aclose()


async def test_transcriber_failure_resolves_futures_and_keeps_running() -> None:
    fake = GatedTranscriber(fail=True)
    fake.gate.set()
    scheduler = TranscriptionScheduler(fake)
    result = await scheduler.submit(utt("x"))
    assert result.rejected == "error"
    assert scheduler.stats().failed == 1
    fake.fail = False
    assert (await scheduler.submit(utt("y"))).text == "text of y"
    await scheduler.aclose()


async def test_cancelled_callers_are_not_transcribed() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake)
    busy = scheduler.submit(utt("busy"))
    await wait_entered(fake)
    gone = scheduler.submit(utt("gone"))
    kept = scheduler.submit(utt("kept"))
    gone.cancel()
    fake.gate.set()
    await asyncio.gather(busy, kept)
    assert fake.batches == [["busy"], ["kept"]]
    await scheduler.aclose()


async def test_close_drops_waiting_work_and_refuses_more() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake)
    busy = scheduler.submit(utt("busy"))
    await wait_entered(fake)
    waiting = scheduler.submit(utt("waiting"))
    fake.gate.set()
    await scheduler.aclose()
    assert waiting.result().rejected == "dropped"
    assert busy.done()
    with pytest.raises(RuntimeError):
        scheduler.submit(utt("late"))


async def test_event_loop_stays_responsive_while_a_batch_runs() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake)
    pending = scheduler.submit(utt("slow"))
    await wait_entered(fake)
    fired = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, fired.set)
    await fired.wait()
    # A timer ran on the loop while the batch still blocks its worker thread. Run on the loop instead, the batch
    # would have held it until the gate's 10 s timeout, and been done by the time the timer fired.
    assert not pending.done() and not fake.gate.is_set()
    fake.gate.set()
    await pending
    await scheduler.aclose()


async def test_a_free_worker_takes_new_utterances_while_another_batch_runs() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake, workers=2)
    first = scheduler.submit(utt("a"))
    await wait_entered(fake)
    second = scheduler.submit(utt("b"))
    await wait_entered(fake)  # entered while "a" is still held at the gate: not queued behind it
    assert fake.batches == [["a"], ["b"]]
    stats = scheduler.stats()
    assert (stats.in_flight, stats.queued) == (2, 0)
    fake.gate.set()
    assert [r.text for r in await asyncio.gather(first, second)] == ["text of a", "text of b"]
    assert len(fake.threads) == 2
    await scheduler.aclose()


async def test_a_burst_is_shared_between_free_workers_oldest_first() -> None:
    fake = GatedTranscriber()
    fake.gate.set()
    scheduler = TranscriptionScheduler(fake, workers=2)
    futures = [scheduler.submit(utt(name)) for name in "abcde"]
    await asyncio.gather(*futures)
    assert sorted(fake.batches) == [["a", "b", "c"], ["d", "e"]]
    assert scheduler.stats().batches == 2
    await scheduler.aclose()


async def test_one_worker_keeps_everything_waiting_for_the_next_batch() -> None:
    fake = GatedTranscriber()
    fake.gate.set()
    scheduler = TranscriptionScheduler(fake, workers=1)
    futures = [scheduler.submit(utt(name)) for name in "abcde"]
    await asyncio.gather(*futures)
    assert fake.batches == [["a", "b", "c", "d", "e"]]
    await scheduler.aclose()


def utt_s(call_id: str, seconds: float) -> Utterance:
    return Utterance(call_id, "customer", 0.0, seconds, np.zeros(int(8000 * seconds), dtype=np.int16), 8000, "en")


async def test_a_burst_is_shared_in_whole_windows() -> None:
    fake = GatedTranscriber()
    fake.gate.set()
    # 4 x 6.5 s fits one 30 s window: splitting it would encode two half-empty windows.
    scheduler = TranscriptionScheduler(fake, workers=2, window_s=30.0, gap_s=0.5)
    await asyncio.gather(*(scheduler.submit(utt_s(name, 6.0)) for name in "abcd"))
    assert fake.batches == [["a", "b", "c", "d"]]
    # 8 x 6.5 s needs two windows: one each.
    fake.batches.clear()
    await asyncio.gather(*(scheduler.submit(utt_s(name, 6.0)) for name in "abcdefgh"))
    assert sorted(fake.batches) == [["a", "b", "c", "d"], ["e", "f", "g", "h"]]
    await scheduler.aclose()


async def test_side_by_side_a_free_worker_starts_at_once_with_at_most_one_window() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake, workers=2, window_s=30.0, gap_s=0.5)
    first = scheduler.submit(utt_s("a", 6.0))
    await wait_entered(fake)
    second = scheduler.submit(utt_s("b", 6.0))
    await wait_entered(fake)  # not held back to gather more: the free worker takes it while "a" runs
    assert fake.batches == [["a"], ["b"]]
    # Both busy: 52 s gathers, and goes out one window (4 x 6.5 s) per batch, never two on one replica.
    more = [scheduler.submit(utt_s(name, 6.0)) for name in "cdefghij"]
    assert scheduler.stats().queued == 8
    fake.gate.set()
    await asyncio.gather(first, second, *more)
    assert sorted(fake.batches[2:]) == [["c", "d", "e", "f"], ["g", "h", "i", "j"]]
    await scheduler.aclose()


async def test_side_by_side_an_utterance_longer_than_a_window_still_goes_out() -> None:
    fake = GatedTranscriber()
    fake.gate.set()
    scheduler = TranscriptionScheduler(fake, workers=2, window_s=30.0, gap_s=0.5)
    results = await asyncio.gather(*(scheduler.submit(utt_s(name, s)) for name, s in (("long", 45.0), ("b", 2.0))))
    assert [r.text for r in results] == ["text of long", "text of b"]
    assert sorted(fake.batches) == [["b"], ["long"]]
    await scheduler.aclose()


async def test_per_call_side_by_side_batches_hold_one_call_and_the_others_keep_their_places() -> None:
    fake = GatedTranscriber()
    scheduler = TranscriptionScheduler(fake, workers=2, window_s=30.0, gap_s=0.5, per_call=4)
    first = scheduler.submit(utt_s("a", 2.0))
    await wait_entered(fake)
    second = scheduler.submit(utt_s("b", 2.0))
    await wait_entered(fake)
    # Both busy: five calls' utterances gather; each batch is then one call's, oldest call first.
    more = [scheduler.submit(utt_s(name, 6.0)) for name in "cdcecdc"]
    fake.gate.set()
    results = await asyncio.gather(first, second, *more)
    assert [r.text for r in results] == [f"text of {name}" for name in "abcdcecdc"]
    later = fake.batches[2:]
    assert all(len(set(batch)) == 1 for batch in later), later
    assert sorted(later) == [["c", "c", "c", "c"], ["d", "d"], ["e"]]
    assert later[0] == ["c", "c", "c", "c"]  # the oldest waiting utterance's call goes first
    await scheduler.aclose()


async def test_per_call_a_lone_worker_takes_the_oldest_calls_everything_waiting() -> None:
    fake = GatedTranscriber()
    fake.gate.set()
    scheduler = TranscriptionScheduler(fake, workers=1, window_s=30.0, gap_s=0.5, per_call=2)
    await asyncio.gather(*(scheduler.submit(utt_s(name, 2.0)) for name in "abcabdc"))
    assert fake.batches == [["a", "b", "a", "b"], ["c", "d", "c"]]
    fake.batches.clear()
    unlimited = TranscriptionScheduler(fake, workers=1, window_s=30.0, gap_s=0.5, per_call=0)
    await asyncio.gather(*(unlimited.submit(utt_s(name, 2.0)) for name in "abcab"))
    assert fake.batches == [["a", "b", "c", "a", "b"]]
    await scheduler.aclose()
    await unlimited.aclose()
