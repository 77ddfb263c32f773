"""``/metrics`` in the Prometheus text format, rendered from the counters the parts already keep."""

from __future__ import annotations

from typing import Protocol

from service.live.pipeline import Runtime
from service.live.transcription import TranscriptionScheduler
from service.storage.writer import Writer


class WorkerCounters(Protocol):
    """``service.web.app.WorkerState``: how this worker's heartbeat in the database goes."""

    @property
    def heartbeat_failures(self) -> int: ...

    @property
    def orphans_closed(self) -> int: ...


def _line(name: str, value: float, help_text: str, kind: str = "gauge", labels: str = "") -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{labels} {value:g}"]


def render(rt: Runtime, writer: Writer, worker: WorkerCounters, scheduler: TranscriptionScheduler | None) -> str:
    st, hub = rt.stats, rt.hub.stats()
    out: list[str] = []
    out += _line("callwatch_calls_live", len(rt.calls), "Calls streaming now.")
    out += _line("callwatch_calls_started_total", st.calls_started, "Calls started.", "counter")
    out += _line("callwatch_calls_failed_total", st.calls_failed, "Calls whose analysis failed.", "counter")
    out += _line("callwatch_calls_ended_total", st.calls_ended, "Calls ended, failed ones included.", "counter")
    out += _line("callwatch_asr_segments_submitted_total", st.asr_submitted, "Speech segments sent for transcription.",
                 "counter")
    out += _line("callwatch_asr_segments_dropped_total", st.asr_dropped,
                 "Speech segments transcription dropped under overload (no transcript, no redaction).", "counter")
    out += _line("callwatch_redaction_held_total", st.redaction_held,
                 "Utterances stored late because a number they ended with could go on.", "counter")
    out += _line("callwatch_redaction_hold_seconds_max", st.redaction_hold_s_max,
                 "Longest such wait, in call seconds.")
    out += ["# HELP callwatch_alerts_total Alerts raised, by rule.", "# TYPE callwatch_alerts_total counter"]
    out += [f'callwatch_alerts_total{{rule="{r}"}} {n}' for r, n in sorted(st.alerts.items())]
    out += _line("callwatch_events_total", st.events, "Events published.", "counter")
    out += ["# HELP callwatch_ingest_errors_total Ingest connections ended by bad input, by code.",
            "# TYPE callwatch_ingest_errors_total counter"]
    out += [f'callwatch_ingest_errors_total{{code="{c}"}} {n}' for c, n in sorted(st.ingest_errors.items())]
    out += _line("callwatch_audio_seconds_total", st.audio_seconds, "Call audio analysed (per call).", "counter")
    out += _line("callwatch_analysis_seconds_total", st.push_seconds,
                 "Processor time spent in the per-call acoustic analysis.", "counter")
    out += _line("callwatch_analysis_chunk_seconds_max", st.push_seconds_max,
                 "Longest single analysis step: how long the event loop was held by one chunk.")
    out += _line("callwatch_event_loop_lag_seconds", st.loop_lag_s,
                 "How late the last timer fired on the event loop (pipeline lag every socket pays).")
    out += _line("callwatch_event_loop_lag_seconds_max", st.loop_lag_max_s, "Worst event loop lag seen.")
    out += _line("callwatch_subscribers", hub.subscribers, "Screens connected.")
    out += _line("callwatch_subscriber_queue_max", hub.max_queue,
                 "Deepest subscriber queue: how far the slowest screen lags.")
    out += _line("callwatch_subscribers_cut_off_total", hub.cut_off, "Screens disconnected for lagging.",
                 "counter")
    out += _line("callwatch_listeners", hub.listeners, "Supervisors listening in.")
    out += _line("callwatch_listen_frames_dropped_total", hub.audio_dropped,
                 "Listen-in audio frames dropped for slow listeners.", "counter")
    out += _line("callwatch_writer_queue", writer.depth, "Writes waiting for the database.")
    out += _line("callwatch_writer_failures_total", writer.failures, "Failed write batches.", "counter")
    out += _line("callwatch_writer_retries_total", writer.retries, "Writes retried while the database was away.",
                 "counter")
    out += _line("callwatch_recording_failures_total", writer.io_failures,
                 "Recording file writes that failed (disk full or failing); the calls' rows were kept.", "counter")
    if hub.bus is not None:  # only across workers (--redis)
        for key, value in sorted(hub.bus.items()):
            out += _line(f"callwatch_bus_{key}", value, f"Bus between workers: {key.replace('_', ' ')}.")
        out += _line("callwatch_remote_calls_expired_total", hub.expired,
                     "Other workers' calls ended here because their worker went silent on the bus.", "counter")
    out += _line("callwatch_worker_heartbeat_failures_total", worker.heartbeat_failures,
                 "Heartbeats the database did not take.", "counter")
    out += _line("callwatch_orphaned_calls_closed_total", worker.orphans_closed,
                 "Calls of dead workers (or this worker's previous run) closed as interrupted.", "counter")
    if scheduler is not None:
        s = scheduler.stats()
        out += _line("callwatch_asr_queue", s.queued, "Utterances waiting for transcription.")
        out += _line("callwatch_asr_lag_seconds", s.lag_s, "Wait of the oldest queued utterance.")
        out += _line("callwatch_asr_dropped_total", s.dropped, "Utterances dropped as stale.", "counter")
        out += _line("callwatch_asr_processed_total", s.processed, "Utterances transcribed.", "counter")
    return "\n".join(out) + "\n"
