"""The live path of one call: decoded audio -> CallMonitor -> typed events, each in a ``CallEvent`` (the call id,
the call's clock) -> alerts -> hub and store; plus the call's lifecycle (``call_started`` / ``call_updated`` /
``call_ended``). Nothing here makes a dict of an event: its wire form is made once, where it leaves.

Each analysis step (a chunk of audio analysed, a transcript read, a lifecycle change) goes out as one unit: every
event once to the hub, in order, and one writer item with what the store may keep of it (``_send``).

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
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from audio.events import RATE
from service.analysis.monitor import AlertEngine, CallMonitor, MonitorSettings, Segment
from service.analysis.redaction import HeldUtterances, UtteranceRedacted, for_listeners
from service.analysis.text_events import UtteranceEvent
from service.analysis.text_rules import TextRules
from service.analysis.wire import CallChanged, CallEvent, Clock, Gap, Observation, call_clock
from service.core.settings import Settings
from service.fanout.hub import Fanout
from service.ingest.audiohook import NonceCache
from service.ingest.common import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    STEP_SAMPLES,
    CallAudio,
    CallGap,
    CallStart,
    IngestError,
)
from service.live.idle import IdleWatch
from service.storage.recording import RawRecorder
from service.storage.sqlite import CallLive, previous_session
from service.storage.writer import Writer

log = logging.getLogger("callwatch.pipeline")

INTERNAL = frozenset({"speech_start", "speech_end"})
"""Kept in the store for review timelines but never counted as observations."""
RECORD_FLUSH_SAMPLES = RATE
"""Recording audio is handed to the writer about once a second, not per 20 ms frame."""
ASR_DRAIN_S = 20.0
"""After hang-up, how long transcripts still in flight may hold back ``call_ended``."""
GAP_AS_SILENCE = RATE
"""Gaps up to this many samples are analysed as silence (cheap, and exact for the detectors); longer ones only
move the call's clock, so an hour's gap costs nothing and each skipped stretch is at least a second."""

Outgoing = tuple[CallEvent, float | None]
"""An event of a step on its way out, with where the utterance starts (monitor s) when its storing must wait."""

MonitorFactory = Callable[[CallStart], CallMonitor]
Submit = Callable[["LiveCall", Segment], "asyncio.Future[Any] | None"]
CLAIM_SETTLE_S = 2.0
"""How long a new session waits for this worker's queued rows before an id that reads as live is refused."""


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
        self.redaction_held = 0
        self.redaction_hold_s_max = 0.0
        """Utterances stored late because a number they ended with could go on, and the longest wait (call s)."""


class Runtime:
    def __init__(self, settings: Settings, hub: Fanout, writer: Writer, *, text: TextRules | None = None,
                 submit: Submit | None = None, monitor_factory: MonitorFactory | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.writer = writer
        self.text = text
        self.submit = submit
        self.monitor_factory = monitor_factory or self._default_monitor
        self.calls: dict[str, LiveCall] = {}
        self.idle = IdleWatch()
        self.nonces = NonceCache()
        self.stats = Stats()
        self.recordings = settings.data_dir / "recordings"

    def _default_monitor(self, start: CallStart) -> CallMonitor:
        language = None if start.language in ("", "auto") else start.language
        return CallMonitor(MonitorSettings(), text=self.text, language=language, segments=self.submit is not None)

    async def open_call(self, start: CallStart) -> LiveCall:
        """A new call for ``start``. Its id is the sender's unless an earlier call had that id: then the next
        free ``id~N``, so that nothing stored under an id is ever replaced (the call object's ``previous``
        names the session before). Refused while the id's latest session is still live."""
        earlier = self.calls.get(start.call_id)
        if earlier is not None and earlier.status == "closing":
            # The client ended that session and reconnects at once (AudioHook answers `close` with `closed` while
            # the call is still being finished): this session follows it as ``id~N`` once it is stored as ended.
            await earlier.close()
        if start.call_id in self.calls:
            raise IngestError("call_live", f"call {start.call_id} is already streaming", CLOSE_POLICY)
        call = LiveCall(self, start)
        try:
            try:
                claimed = await asyncio.to_thread(self.writer.store.claim_call, call.call_object())
            except CallLive:
                # Live in the store but not here: perhaps a session of this worker that has just ended, whose
                # last row is still queued. Once the queue is written, only another worker's call is live.
                await self.writer.settle(CLAIM_SETTLE_S)
                claimed = await asyncio.to_thread(self.writer.store.claim_call, call.call_object())
        except CallLive as e:
            raise IngestError("call_live", str(e), CLOSE_POLICY) from None
        except Exception:
            log.exception("could not reserve call id %s", start.call_id)
            raise IngestError("unavailable", "the call could not be stored; try again", CLOSE_TRY_AGAIN) from None
        if claimed in self.calls:  # another connection of this worker claimed the same id meanwhile
            raise IngestError("call_live", f"call {start.call_id} is already streaming", CLOSE_POLICY)
        if claimed != start.call_id:
            log.info("call id %s was used before: this session is %s", start.call_id, claimed)
            call.rename(claimed)
        self.calls[claimed] = call
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
        self.team = start.team
        """The agent's team as the ingest named it (None: not named); the store files the agent under it."""
        self.source = start.source
        self.language = start.language
        self.started = time.time()
        self.ended: float | None = None
        self.status = "live"
        self.end_reason = ""
        self._clock = time.monotonic()
        self._media_samples = 0
        """Audio received plus declared gaps, against ``max_audio_speed``."""
        self.skipped = 0
        """Samples of call time skipped as gaps, not analysed."""
        self._gap_at: list[float] = []
        self._gap_total: list[float] = []
        """Monitor time (s) where each skipped gap starts, and the seconds skipped up to and including it."""
        self._call_clock: Clock | None = None
        """Monitor time to call time once a gap was skipped (None before: they are the same). Each gap makes a
        new one, so an event's wire form, made later, still reads the clock of its own moment."""
        self.monitor = runtime.monitor_factory(start)
        self.alerts = AlertEngine(self.id, asr=runtime.submit is not None)
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._unanalysed: list[np.ndarray[Any, np.dtype[np.int16]]] = []
        """The one buffer of the live path: stereo rows (customer, agent) until a step's worth is in."""
        self._unanalysed_samples = 0
        self._seq = 0
        self._pending_asr: dict[asyncio.Future[Any], Segment] = {}
        self._unheard: list[tuple[float, float]] = []
        """Speech no transcript came for (dropped under overload, failed, or still pending at the end): redaction
        could not look at it, so a kept recording holds silence there (monitor time)."""
        self._closing: asyncio.Task[None] | None = None
        policy = runtime.settings.recording
        self.recorder = None if policy == "none" else RawRecorder(runtime.recordings, self.id)
        self._rec_buf: list[bytes] = []
        self._rec_samples = 0
        self.held = HeldUtterances()
        """Utterances shown but not yet stored: a number they end with may go on and turn out sensitive."""

    def rename(self, call_id: str) -> None:
        """Before ``begin``: the id this session was given in place of the sender's."""
        self.id = call_id
        self.alerts = AlertEngine(self.id, asr=self.rt.submit is not None)
        if self.recorder is not None:
            self.recorder = RawRecorder(self.rt.recordings, self.id)

    @property
    def t(self) -> float:
        return round((self.samples + self.skipped) / RATE, 3)

    def call_object(self) -> dict[str, Any]:
        return {"id": self.id, "agent_id": self.agent_id, "team": self.team, "source": self.source,
                "language": self.language,
                "started": self.started, "ended": self.ended, "status": self.status, "duration": self.t,
                **self.alerts.call_fields(), "counts": dict(self.counts), "recording": None,
                "previous": previous_session(self.id)}

    def begin(self) -> None:
        self._lifecycle("call_started")

    def _lifecycle(self, kind: Literal["call_started", "call_updated", "call_ended"],
                   reason: str | None = None) -> None:
        call = self.call_object()
        self._send([(CallEvent(self.id, CallChanged(kind, self.t, call, reason)), None)], call,
                   everything=kind == "call_ended")

    def _spend(self, samples: int) -> None:
        """Count audio against the call's clock: a sender may not run ahead of real time by more than the
        settings allow, however fast it can write (a flood is cut off, not analysed)."""
        s = self.rt.settings
        self._media_samples += samples
        if not s.max_audio_speed:
            return
        allowed = (s.audio_burst_s + s.max_audio_speed * (time.monotonic() - self._clock)) * RATE
        if self._media_samples > allowed:
            ahead = (self._media_samples - allowed) / RATE
            raise IngestError("too_fast", f"audio arrives faster than real time: {ahead:.1f} s beyond the "
                              f"allowed {s.max_audio_speed:g}x real time plus {s.audio_burst_s:g} s", CLOSE_POLICY)

    def skip(self, gap: CallGap) -> None:
        """Call time the sender did not send: short gaps are analysed as silence, longer ones only move the
        clock (and are marked with a ``gap`` event), so no gap costs more than a second of analysis."""
        if self.status != "live" or gap.samples <= 0:
            return
        if gap.samples <= GAP_AS_SILENCE:
            self.feed(CallAudio(np.zeros((gap.samples, 2), dtype=np.int16)))
            return
        self._spend(gap.samples)
        self._analyse()  # what came before the gap is analysed first, so the gap sits where it happened
        start = self.t
        self._gap_at.append(self.samples / RATE)
        self._gap_total.append((self._gap_total[-1] if self._gap_total else 0.0) + gap.samples / RATE)
        self._call_clock = call_clock(tuple(self._gap_at), tuple(self._gap_total))
        self.skipped += gap.samples
        self.rt.stats.audio_seconds += gap.samples / RATE
        self._send([(CallEvent(self.id, Gap(start, round(gap.samples / RATE, 3), self.t)), None)], None)

    def feed(self, audio: CallAudio) -> None:
        """One aligned chunk of both legs. Raises IngestError (1011) if the analysis itself fails."""
        n = audio.samples
        if self.status != "live" or not n:
            return
        self._spend(n)
        if self.rt.hub.has_listeners(self.id):
            self.rt.hub.publish_audio(self.id, for_listeners(audio.frames, self.monitor.redactor, self.monitor.time_s))
        self._unanalysed.append(audio.frames)
        self._unanalysed_samples += n
        if self._unanalysed_samples >= STEP_SAMPLES:
            self._analyse()

    def _analyse(self) -> None:
        if not self._unanalysed:
            return
        # A chunk that is a step already (Twilio's aligner hands on steps) is analysed as it came.
        rows = self._unanalysed[0] if len(self._unanalysed) == 1 else np.concatenate(self._unanalysed)
        self._unanalysed, self._unanalysed_samples = [], 0
        self._record(rows)
        c, a = np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1])
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

    def _emit(self, events: Sequence[Observation]) -> None:
        """One step's observations, each followed by the alerts it brought; when those changed the call's score
        or flags, one ``call_updated`` goes before the first of them, so a screen knows the call its alert is
        about (the call object is the one after the whole step)."""
        out: list[Outgoing] = []
        changed_at: int | None = None
        for ev in events:
            wrapped = CallEvent(self.id, ev, self._call_clock)
            if ev.type not in INTERNAL and ev.type != "prosody":
                self.counts[ev.type] += 1
            out.append((wrapped, self._storing_waits(ev)))
            before = (self.alerts.score, self.alerts.flagged)
            alerts = self.alerts.observe(ev, clock=self._call_clock, cite=wrapped)
            if changed_at is None and before != (self.alerts.score, self.alerts.flagged):
                changed_at = len(out)
            for alert in alerts:
                sign = 1 if alert.type == "alert" else -1
                self.counts["alert"] += sign
                self.rt.stats.alerts[alert.rule] += sign
                out.append((CallEvent(self.id, alert), None))  # already on the call's clock
        call = None
        if changed_at is not None:
            call = self.call_object()
            out.insert(changed_at, (CallEvent(self.id, CallChanged("call_updated", self.t, call)), None))
        self._send(out, call)

    def _storing_waits(self, ev: Observation) -> float | None:
        """For an utterance that may end with the first digits of a longer number: where it starts (monitor s),
        so that it is shown now but stored only once the number is over and the redactor has had its say. The
        store never keeps digits that later words show to be a card number."""
        redactor = self.monitor.redactor
        if isinstance(ev, UtteranceEvent) and redactor is not None \
                and redactor.pending(ev.leg, ev.start, self.monitor.time_s):
            return ev.start
        return None

    def _send(self, out: Sequence[Outgoing], call: dict[str, Any] | None, *, everything: bool = False) -> None:
        """A step on its way out: each event once to the hub, in order, numbered in that order; then one writer
        item with what the store may keep now (the step's events but the utterances whose storing waits, the
        waiting ones that settled, all of them with ``everything``) and ``call``, the call row, if it changed."""
        stored: list[tuple[int, CallEvent]] = []
        now = self.monitor.time_s
        for ev, waits_from in out:
            seq, self._seq = self._seq, self._seq + 1
            self.rt.hub.publish(ev, self.agent_id)
            if waits_from is not None:
                self.held.hold(seq, ev.wire, waits_from, now)
                continue
            if isinstance(ev.event, UtteranceRedacted):
                self.held.revise(ev.wire)
            stored.append((seq, ev))
        self.rt.stats.events += len(out)
        if len(self.held):
            redactor = self.monitor.redactor
            released = self.held.release(redactor.pending if redactor else None, now, everything=everything)
            stored += [(seq, CallEvent.from_wire(wire)) for seq, wire in released]
            stored.sort(key=lambda item: item[0])
            st = self.rt.stats
            st.redaction_held += len(released)
            st.redaction_hold_s_max = max(st.redaction_hold_s_max, max(self.held.delays, default=0.0))
        if stored or call is not None:
            self.rt.writer.step(self.id, stored, call)

    def _transcribe(self, segments: list[Segment]) -> None:
        submit = self.rt.submit
        if submit is None:
            return
        for seg in segments:
            fut = submit(self, seg)
            if fut is None:
                continue
            self.rt.stats.asr_submitted += 1
            self._pending_asr[fut] = seg
            fut.add_done_callback(functools.partial(self._transcribed, seg=seg))

    def _transcribed(self, fut: asyncio.Future[Any], *, seg: Segment) -> None:
        self._pending_asr.pop(fut, None)
        if fut.cancelled() or fut.exception() is not None:
            self._unheard.append((seg.start_s, seg.end_s))
            return
        tr = fut.result()
        if getattr(tr, "rejected", None) == "dropped":
            self.rt.stats.asr_dropped += 1
            self._unheard.append((seg.start_s, seg.end_s))
        if not tr.text or self.status not in ("live", "closing"):
            return
        words = [(w.word, w.start, w.end) for w in tr.words]
        try:
            events = self.monitor.add_transcript(seg.leg, seg.start_s, seg.end_s, tr.text, words, tr.language)
        except Exception:
            log.exception("turning a transcript of call %s into events failed", self.id)
            return
        self._emit(events)

    def _record(self, rows: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        if self.recorder is None:
            return
        self._rec_buf.append(rows.astype("<i2", copy=False).tobytes())
        self._rec_samples += len(rows)
        if self._rec_samples >= RECORD_FLUSH_SAMPLES:
            self._flush_recording()

    def _flush_recording(self) -> None:
        if self.recorder is None or not self._rec_buf:
            return
        data, self._rec_buf, self._rec_samples = b"".join(self._rec_buf), [], 0
        self.rt.writer.io(functools.partial(self.recorder.append, data))

    async def close(self, reason: str = "end") -> None:
        """End the call with what was received: flush open episodes, wait briefly for transcripts, store."""
        await asyncio.shield(self.end_soon(reason))

    def end_soon(self, reason: str = "end") -> asyncio.Future[None]:
        """Starts ending the call (once) without waiting: from now on the call is ``closing``."""
        if self._closing is None:
            failed = self.status == "failed"
            self.status = "closing"
            self._closing = asyncio.ensure_future(self._close(reason, failed))
        return self._closing

    async def _close(self, reason: str, failed: bool) -> None:
        self.end_reason = reason
        try:
            if not failed:
                self._analyse()
                self._emit(self.monitor.finish())
                self._transcribe(self.monitor.take_segments())
            if self._pending_asr:
                await asyncio.wait(set(self._pending_asr), timeout=ASR_DRAIN_S)
                self._unheard.extend((seg.start_s, seg.end_s) for seg in self._pending_asr.values())
        except Exception:
            log.exception("finishing call %s failed", self.id)
            failed = True
        finally:
            self.ended = time.time()
            self.status = "failed" if failed else "ended"
            self._flush_recording()
            self._lifecycle("call_ended", reason)  # with every utterance whose storing still waited
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
        silence = [*self.monitor.silenced, *self._unheard]  # monitor time, as the recorder's audio is

        def finish() -> None:
            path = rec.finish(keep, silence=silence)
            if path is not None:
                writer.store.write([("recording", (call_id, str(path)))])

        writer.io(finish)
