"""Feed utterances from every live call to one transcriber without ever holding up the event loop.

``submit()`` only appends to a bounded queue and returns a future. A worker task takes what is waiting
(oldest first, up to ``max_batch``) and runs a single ``transcribe_batch`` call in its own thread, which
is what lets the transcriber pack and batch across calls. With ``workers`` > 1 (a model loaded with as many
CTranslate2 replicas) batches run side by side, and each is at most one packed window, started as soon as a
worker is free: the workers take turns, so an utterance that ends while all are busy waits for the first to
come free, not for a batch of several windows (one thread decodes a lone window as fast per window as a
batch of four). Which is best depends on the load (``service/core/settings.py``): on two cores one replica of two
threads gives fresher text up to about 10 calls, two of one thread under a heavier load.

With ``per_call`` (the transcriber keeps every call in windows of its own, ``DecodeSettings.isolation="call"``)
a batch holds the waiting utterances of at most ``per_call`` calls, oldest first, since each call is a window
of its own: a lone worker takes as many calls as the transcriber puts through the encoder at once (its
``batch_windows``), so the oldest get their text after one encoder pass instead of waiting for a window of
every call that spoke; side-by-side workers take one call each. The other calls' utterances keep their places
in the queue (and gather more of their own call's speech for a fuller window).

When recognition falls behind, stale work is dropped rather than queued forever: a coaching cue about
something said a minute ago is worthless, while a growing backlog would delay every later call too.
Dropped utterances resolve to an empty transcript with ``rejected="dropped"``, and are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from models.transcriber import Transcriber, Transcript, Utterance
from service.live.priority import lower_this_thread

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TranscriptionStats:
    queued: int
    """Utterances waiting, not counting the batch being transcribed."""
    lag_s: float
    """How long the oldest waiting utterance has waited."""
    in_flight: int
    processed: int
    """Utterances transcribed (including those that came back empty)."""
    dropped: int
    """Skipped because they waited longer than ``max_lag_s``, overflowed the queue, or were
    still waiting at shutdown."""
    failed: int
    """Utterances whose batch raised in the transcriber."""
    batches: int


@dataclass(slots=True)
class _Job:
    utterance: Utterance
    future: asyncio.Future[Transcript]
    queued_at: float


def _skipped(utt: Utterance, reason: str) -> Transcript:
    return Transcript("", utt.language or "", rejected=reason)


class TranscriptionScheduler:
    """``workers``: batches run side by side (the model needs as many replicas). ``window_s`` and ``gap_s``: how
    much audio one of the transcriber's windows holds and the silence it puts between utterances; when given,
    a batch of side-by-side workers is at most one window (else a burst is shared out between them by count).
    ``per_call``: the transcriber packs each call apart; a batch holds at most this many calls (one with side-by-side
    workers and a window size), 0 for no limit (module docstring)."""

    def __init__(
        self,
        transcriber: Transcriber,
        *,
        max_queue: int = 256,
        max_batch: int = 32,
        max_lag_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        nice: int = 0,
        workers: int = 1,
        window_s: float = 0.0,
        gap_s: float = 0.0,
        per_call: int = 0,
    ) -> None:
        if max_queue < 1 or max_batch < 1 or workers < 1:
            raise ValueError("max_queue, max_batch and workers must be at least 1")
        self._transcriber = transcriber
        self._max_queue = max_queue
        self._max_batch = max_batch
        self._max_lag_s = max_lag_s
        self._clock = clock
        self._queue: deque[_Job] = deque()
        self._wakeup = asyncio.Event()
        # One thread per model replica: more threads than replicas would only queue inside CTranslate2.
        # The feature extraction runs on these threads: as low as the model's own (service/live/priority.py).
        self._workers_wanted = workers
        self._window_s = window_s
        self._gap_s = gap_s
        self._per_call = per_call
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr",
                                            initializer=lower_this_thread, initargs=(nice,))
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0
        """Workers inside a batch."""
        self._closed = False
        self._in_flight = 0
        self._processed = 0
        self._dropped = 0
        self._failed = 0
        self._batches = 0

    def submit(self, utterance: Utterance) -> asyncio.Future[Transcript]:
        """Queue one utterance; never blocks. Call from the event loop's thread."""
        if self._closed:
            raise RuntimeError("transcription scheduler is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Transcript] = loop.create_future()
        self._queue.append(_Job(utterance, future, self._clock()))
        while len(self._queue) > self._max_queue:
            self._drop(self._queue.popleft())
        if not self._workers:
            self._workers = [loop.create_task(self._run(), name=f"transcription-worker-{k}")
                             for k in range(self._workers_wanted)]
        self._wakeup.set()
        return future

    def stats(self) -> TranscriptionStats:
        lag = self._clock() - self._queue[0].queued_at if self._queue else 0.0
        return TranscriptionStats(
            queued=len(self._queue),
            lag_s=max(0.0, lag),
            in_flight=self._in_flight,
            processed=self._processed,
            dropped=self._dropped,
            failed=self._failed,
            batches=self._batches,
        )

    async def aclose(self) -> None:
        """Stop taking work, drop what is waiting, and let the batch in progress finish."""
        self._closed = True
        while self._queue:
            self._drop(self._queue.popleft())
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        # The thread may still be inside a batch; wait for it off the loop.
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    def _drop(self, job: _Job) -> None:
        self._dropped += 1
        if not job.future.done():
            job.future.set_result(_skipped(job.utterance, "dropped"))

    def _take_batch(self) -> list[_Job]:
        now = self._clock()
        while self._queue and now - self._queue[0].queued_at > self._max_lag_s:
            self._drop(self._queue.popleft())
        limit, room = self._max_batch, math.inf
        if self._workers_wanted > 1 and self._window_s > 0:
            # Side by side, each batch is one window at most, started at once: the workers take turns, so what
            # ends while one is busy waits for the first to come free, never for a batch of two windows on one
            # replica. Under a backlog the windows fill up by themselves. (Holding a second batch back for up
            # to 1 s to pack more was measured too: no better at 20 calls, worse at 10.)
            room = self._window_s
        elif self._workers_wanted > 1:
            # Window size unknown: a burst is shared out by count between the free workers.
            free = max(1, self._workers_wanted - self._busy)
            limit = min(limit, -(-len(self._queue) // free))
        calls_wanted = (1 if room < math.inf else self._per_call) if self._per_call else 0
        calls: set[str] = set()
        batch: list[_Job] = []
        passed: list[_Job] = []
        """Utterances of calls beyond ``calls_wanted``, looked past: they go back in their places."""
        while self._queue and len(batch) < limit:
            call = self._queue[0].utterance.call_id
            if calls_wanted and call not in calls and len(calls) >= calls_wanted:
                passed.append(self._queue.popleft())
                continue
            if batch and room < self._packed_s(self._queue[0].utterance):
                break
            job = self._queue.popleft()
            room -= self._packed_s(job.utterance)
            # A caller that gave up (cancelled its future) no longer needs the work done.
            if not job.future.done():
                batch.append(job)
                calls.add(call)
        self._queue.extendleft(reversed(passed))
        return batch

    def _packed_s(self, utterance: Utterance) -> float:
        return utterance.end_s - utterance.start_s + self._gap_s

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while batch := self._take_batch():
                if self._queue:
                    self._wakeup.set()  # the rest is for a free worker, if there is one
                utterances = [job.utterance for job in batch]
                self._busy += 1
                self._in_flight += len(batch)
                started = self._clock()
                try:
                    results = await loop.run_in_executor(self._executor, self._transcriber.transcribe_batch, utterances)
                    log.debug("batch of %d utterances, %.1f s packed, oldest waited %.2f s, took %.2f s, %d busy",
                              len(batch), sum(self._packed_s(u) for u in utterances),
                              started - batch[0].queued_at, self._clock() - started, self._busy)
                    if len(results) != len(batch):
                        raise RuntimeError(f"transcriber returned {len(results)} results for {len(batch)}")
                    self._processed += len(batch)
                except asyncio.CancelledError:
                    for job in batch:
                        self._drop(job)
                    raise
                except Exception:
                    log.exception("transcription of a batch of %d utterances failed", len(batch))
                    self._failed += len(batch)
                    results = [_skipped(u, "error") for u in utterances]
                finally:
                    self._busy -= 1
                    self._in_flight -= len(batch)
                self._batches += 1
                for job, result in zip(batch, results, strict=True):
                    if not job.future.done():
                        job.future.set_result(result)
