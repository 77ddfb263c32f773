"""The live path of one call: decoded audio -> CallMonitor -> events stamped with the call id -> alerts ->
hub and store; plus the call's lifecycle (``call_started`` / ``call_updated`` / ``call_ended``).

``Runtime`` holds what all calls share (hub, writer, transcription, counters); ``LiveCall`` is one call.
Everything runs on the event loop except blocking work, which goes to the writer or the ASR thread.
``CallMonitor.push`` is synchronous and cheap (measured well under 1 % of real time per call), so it runs
inline on each chunk, which keeps events in order without a queue per call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from service.alerts import AlertEngine
from service.hub import Hub
from service.idle_watch import IdleWatch
from service.ingest_common import CLOSE_INTERNAL, CLOSE_POLICY, STEP_SAMPLES, CallAudio, CallStart, IngestError
from service.monitor import CallMonitor, Event, MonitorSettings, Segment, TextRules
from service.recording import RawRecorder
from service.settings import Settings
from service.writer import Writer

log = logging.getLogger("callwatch.pipeline")

RATE = 8000
INTERNAL = frozenset({"speech_start", "speech_end"})
"""Kept in the store for review timelines but never counted as observations."""
RECORD_FLUSH_SAMPLES = RATE
"""Recording audio is handed to the writer about once a second, not per 20 ms frame."""
ASR_DRAIN_S = 20.0
"""After hang-up, how long transcripts still in flight may hold back ``call_ended``."""

MonitorFactory = Callable[[CallStart], CallMonitor]
Submit = Callable[["LiveCall", Segment], "asyncio.Future[Any] | None"]


class Stats:
    """Counters for /metrics; plain numbers, updated inline."""

    def __init__(self) -> None:
        self.calls_started = 0
        self.calls_ended = 0
        self.calls_failed = 0
        self.alerts: Counter[str] = Counter()
        self.events = 0
        self.ingest_errors: Counter[str] = Counter()
        self.audio_seconds = 0.0
        self.push_seconds = 0.0
        self.push_seconds_max = 0.0
        self.asr_submitted = 0
        self.asr_dropped = 0
        self.loop_lag_s = 0.0
        self.loop_lag_max_s = 0.0


class Runtime:
    def __init__(self, settings: Settings, hub: Hub, writer: Writer, *, text: TextRules | None = None,
                 submit: Submit | None = None, monitor_factory: MonitorFactory | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.writer = writer
        self.text = text
        self.submit = submit
        self.monitor_factory = monitor_factory or self._default_monitor
        self.calls: dict[str, LiveCall] = {}
        self.idle = IdleWatch()
        self.stats = Stats()
        self.recordings = settings.data_dir / "recordings"

    def _default_monitor(self, start: CallStart) -> CallMonitor:
        language = None if start.language in ("", "auto") else start.language
        return CallMonitor(MonitorSettings(), text=self.text, language=language, segments=self.submit is not None)

    def open_call(self, start: CallStart) -> LiveCall:
        if start.call_id in self.calls:
            raise IngestError("call_live", f"call {start.call_id} is already streaming", CLOSE_POLICY)
        call = LiveCall(self, start)
        self.calls[start.call_id] = call
        self.stats.calls_started += 1
        call.begin()
        return call

    async def close_all(self, reason: str = "shutdown") -> None:
        await asyncio.gather(*(c.close(reason) for c in list(self.calls.values())))
        await self.idle.close()


class LiveCall:
    def __init__(self, runtime: Runtime, start: CallStart) -> None:
        self.rt = runtime
        self.id = start.call_id
        self.agent_id = start.agent_id
        self.source = start.source
        self.language = start.language
        self.started = time.time()
        self.ended: float | None = None
        self.status = "live"
        self.monitor = runtime.monitor_factory(start)
        self.alerts = AlertEngine(self.id, asr=runtime.submit is not None)
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._unanalysed: list[tuple[np.ndarray[Any, np.dtype[np.int16]], np.ndarray[Any, np.dtype[np.int16]]]] = []
        self._unanalysed_samples = 0
        self._seq = 0
        self._pending_asr: set[asyncio.Future[Any]] = set()
        self._closing: asyncio.Task[None] | None = None
        policy = runtime.settings.recording
        self.recorder = None if policy == "none" else RawRecorder(runtime.recordings, self.id)
        self._rec_buf: list[bytes] = []
        self._rec_samples = 0

    @property
    def t(self) -> float:
        return round(self.samples / RATE, 3)

    def call_object(self) -> dict[str, Any]:
        return {"id": self.id, "agent_id": self.agent_id, "source": self.source, "language": self.language,
                "started": self.started, "ended": self.ended, "status": self.status, "duration": self.t,
                "escalation_score": self.alerts.score, "flagged": self.alerts.flagged,
                "flags": sorted(self.alerts.flags), "counts": dict(self.counts), "recording": None}

    def begin(self) -> None:
        self.rt.writer.db("reset_call", self.id)
        self._lifecycle("call_started")

    def _lifecycle(self, kind: str) -> None:
        call = self.call_object()
        self.rt.writer.db("call", call)
        self._publish({"type": kind, "call_id": self.id, "t": self.t, "call": call})

    def _publish(self, ev: dict[str, Any]) -> None:
        self.rt.hub.publish(ev, self.agent_id)
        self.rt.writer.db("events", (self.id, self._seq, [ev]))
        self._seq += 1
        self.rt.stats.events += 1

    def feed(self, audio: CallAudio) -> None:
        """One aligned chunk of both legs. Raises IngestError (1011) if the analysis itself fails."""
        if self.status != "live" or not len(audio.customer):
            return
        c, a = audio.customer, audio.agent
        if self.rt.hub.has_listeners(self.id):
            self.rt.hub.publish_audio(self.id, np.stack([c, a], axis=1).astype("<i2").tobytes())
        self._unanalysed.append((c, a))
        self._unanalysed_samples += len(c)
        if self._unanalysed_samples >= STEP_SAMPLES:
            self._analyse()

    def _analyse(self) -> None:
        if not self._unanalysed:
            return
        c = np.concatenate([x for x, _ in self._unanalysed])
        a = np.concatenate([y for _, y in self._unanalysed])
        self._unanalysed, self._unanalysed_samples = [], 0
        self._record(c, a)
        began = time.perf_counter()
        try:
            events = self.monitor.push(c, a)
            segments = self.monitor.take_segments()
        except Exception:
            log.exception("analysis of call %s failed; closing it with what was received", self.id)
            self.status = "failed"
            raise IngestError("internal", "the analysis of this call failed", CLOSE_INTERNAL) from None
        took = time.perf_counter() - began
        st = self.rt.stats
        st.push_seconds += took
        st.push_seconds_max = max(st.push_seconds_max, took)
        st.audio_seconds += len(c) / RATE
        self.samples += len(c)
        self._emit(events)
        self._transcribe(segments)

    def update_language(self, language: str) -> None:
        self.language = language
        self._lifecycle("call_updated")

    def _emit(self, events: list[Event] | list[Any]) -> None:
        changed = False
        for ev in events:
            d = ev.to_dict()
            d["call_id"] = self.id
            kind = str(d["type"])
            if kind not in INTERNAL and kind != "prosody":
                self.counts[kind] += 1
            self._publish(d)
            before = (self.alerts.score, self.alerts.flagged)
            for alert in self.alerts.observe(d):
                alert["call_id"] = self.id
                if alert["type"] == "alert":
                    self.counts["alert"] += 1
                    self.rt.stats.alerts[alert["rule"]] += 1
                else:
                    self.counts["alert"] -= 1
                    self.rt.stats.alerts[alert["rule"]] -= 1
                self._publish(alert)
            changed = changed or before != (self.alerts.score, self.alerts.flagged)
        if changed:
            self._lifecycle("call_updated")

    def _transcribe(self, segments: list[Segment]) -> None:
        submit = self.rt.submit
        if submit is None:
            return
        for seg in segments:
            fut = submit(self, seg)
            if fut is None:
                continue
            self.rt.stats.asr_submitted += 1
            self._pending_asr.add(fut)
            fut.add_done_callback(functools.partial(self._transcribed, seg=seg))

    def _transcribed(self, fut: asyncio.Future[Any], *, seg: Segment) -> None:
        self._pending_asr.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            return
        tr = fut.result()
        if getattr(tr, "rejected", None) == "dropped":
            self.rt.stats.asr_dropped += 1
        if not tr.text or self.status not in ("live", "closing"):
            return
        words = [(w.word, w.start, w.end) for w in tr.words]
        try:
            events = self.monitor.add_transcript(seg.leg, seg.start_s, seg.end_s, tr.text, words, tr.language)
        except Exception:
            log.exception("turning a transcript of call %s into events failed", self.id)
            return
        self._emit(events)

    def _record(self, c: np.ndarray[Any, np.dtype[np.int16]], a: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        if self.recorder is None:
            return
        self._rec_buf.append(np.stack([c, a], axis=1).astype("<i2").tobytes())
        self._rec_samples += len(c)
        if self._rec_samples >= RECORD_FLUSH_SAMPLES:
            self._flush_recording()

    def _flush_recording(self) -> None:
        if self.recorder is None or not self._rec_buf:
            return
        data, self._rec_buf, self._rec_samples = b"".join(self._rec_buf), [], 0
        self.rt.writer.io(functools.partial(self.recorder.append, data))

    async def close(self, reason: str = "end") -> None:
        """End the call with what was received: flush open episodes, wait briefly for transcripts, store."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(reason))
        await asyncio.shield(self._closing)

    async def _close(self, reason: str) -> None:
        failed = self.status == "failed"
        self.status = "closing"
        try:
            if not failed:
                self._analyse()
                self._emit(self.monitor.finish())
                self._transcribe(self.monitor.take_segments())
            if self._pending_asr:
                await asyncio.wait(set(self._pending_asr), timeout=ASR_DRAIN_S)
        except Exception:
            log.exception("finishing call %s failed", self.id)
            failed = True
        finally:
            self.ended = time.time()
            self.status = "failed" if failed else "ended"
            self._flush_recording()
            self._lifecycle("call_ended")
            self._finish_recording()  # after the row it updates, which call_ended rewrites
            self.rt.hub.end_call(self.id)
            self.rt.calls.pop(self.id, None)
            self.rt.stats.calls_ended += 1
            self.rt.stats.calls_failed += failed
            log.info("call %s ended (%s): %.1f s, %d alerts", self.id, reason, self.t, self.counts["alert"])

    def _finish_recording(self) -> None:
        rec = self.recorder
        if rec is None:
            return
        keep = self.rt.settings.recording == "all" or self.alerts.flagged
        call_id, writer = self.id, self.rt.writer

        def finish() -> None:
            path = rec.finish(keep)
            if path is not None:
                writer.store.write([("recording", (call_id, str(path)))])

        writer.io(finish)

