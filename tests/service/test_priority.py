"""Transcription threads run below the signal path's priority, and threads they start inherit it."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from models.transcriber import Transcript, Utterance
from service.live.priority import lower_this_thread, run_lowered
from service.live.transcription import TranscriptionScheduler


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_run_lowered_runs_below_the_caller_and_its_threads_inherit_it() -> None:
    base = thread_nice()

    def body() -> tuple[int, int]:
        seen: list[int] = []
        child = threading.Thread(target=lambda: seen.append(thread_nice()))
        child.start()
        child.join()
        return thread_nice(), seen[0]

    own, child = run_lowered(5, body)
    assert own == child == min(19, base + 5)
    assert thread_nice() == base  # the caller keeps its own priority


def test_zero_changes_nothing_and_errors_reach_the_caller() -> None:
    base = thread_nice()
    lower_this_thread(0)
    assert thread_nice() == base
    try:
        run_lowered(3, lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("the error in the lowered thread was swallowed")


class NiceRecorder:
    def __init__(self) -> None:
        self.nice: list[int] = []

    def transcribe_batch(self, utterances: Sequence[Utterance]) -> list[Transcript]:
        self.nice.append(thread_nice())
        return [Transcript("ok", "en") for _ in utterances]


async def test_the_scheduler_thread_runs_lowered() -> None:
    fake = NiceRecorder()
    scheduler = TranscriptionScheduler(fake, nice=7)
    await scheduler.submit(Utterance("c", "customer", 0.0, 1.0, np.zeros(8000, dtype=np.int16), 8000, "en"))
    await scheduler.aclose()
    assert fake.nice == [min(19, thread_nice() + 7)]
