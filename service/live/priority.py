"""Transcription yields the processor to the signal path.

On a CPU worker Whisper keeps every core it is given busy. The acoustic alerts, which must reach the agent
within a fraction of a second, run on the event loop's thread; lowering the recogniser threads' OS priority
(their nice value) lets the kernel run the loop first whenever both want a core, so a transcription backlog
delays transcripts, never alerts. Linux sets nice per thread and a new thread inherits its creator's, so the
model is built from a thread that has already lowered itself: CTranslate2's compute threads start there.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("callwatch.priority")


def lower_this_thread(nice: int) -> None:
    """Add ``nice`` to the calling thread's nice value (Linux; elsewhere a no-op, logged once)."""
    if nice <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (AttributeError, OSError) as exc:
        log.info("cannot lower the transcription threads' priority here (%s); they compete as equals", exc)


def run_lowered(nice: int, fn: Callable[[], T]) -> T:
    """``fn()`` on a fresh thread that first lowers its priority by ``nice``; threads it starts inherit it."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        lower_this_thread(nice)
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller's thread below
            error.append(exc)

    t = threading.Thread(target=body, name="asr-load")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]
