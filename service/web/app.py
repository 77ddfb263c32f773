"""The Starlette application: ``create_app(settings)`` wires the parts; uvicorn runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from service.analysis.monitor import Segment
from service.core.auth import ensure_secret
from service.core.settings import Settings
from service.fanout.bus_hub import close_hub, open_hub
from service.live import pump as ws_ingest
from service.live.pipeline import LiveCall, Runtime, Submit
from service.live.priority import run_lowered
from service.storage import recording
from service.storage.backends import CallStore, open_store
from service.storage.writer import Writer
from service.web import coaching as coaching_api
from service.web import rest as http_api
from service.web import subscribers as ws_subscribe
from service.web.openapi import spec
from service.web.pages import page_routes

log = logging.getLogger("callwatch")

RETENTION_SWEEP_S = 3600.0
LOOP_PROBE_S = 0.5


async def _watch_loop(rt: Runtime) -> None:
    """How late a timer fires is how long every socket waited: the lag every alert pays on top of analysis."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LOOP_PROBE_S
        await asyncio.sleep(LOOP_PROBE_S)
        lag = max(0.0, loop.time() - due)
        rt.stats.loop_lag_s = lag
        rt.stats.loop_lag_max_s = max(rt.stats.loop_lag_max_s, lag)


def start_asr(settings: Settings) -> tuple[Any, Submit]:
    """Load the recogniser and a scheduler that batches every call's utterances into it."""
    from models.transcriber import Utterance
    from models.whisper import DecodeSettings, WhisperTranscriber, isolation_named
    from service.live.transcription import TranscriptionScheduler

    fixed = None if settings.language == "auto" else settings.language
    model = run_lowered(settings.asr_nice, lambda: load_whisper(settings))
    # Isolation: "call" (the default) keeps every call in windows of its own; CALLWATCH_ASR_ISOLATION=shared
    # packs calls together (faster, not isolated: benchmarks only).
    isolation = isolation_named(os.environ.get("CALLWATCH_ASR_ISOLATION", DecodeSettings().isolation))
    decode = DecodeSettings(batch_windows=settings.asr_batch_windows, isolation=isolation,
                            fit_s=settings.asr_fit_s)
    transcriber = WhisperTranscriber(model, language=fixed, settings=decode)
    scheduler = TranscriptionScheduler(transcriber, nice=settings.asr_nice, workers=settings.asr_workers,
                                       window_s=decode.window_s, gap_s=decode.gap_s,
                                       per_call=decode.batch_windows if decode.isolation == "call" else 0)

    def submit(call: LiveCall, seg: Segment) -> asyncio.Future[Any]:
        lang = fixed or (None if call.language in ("", "auto") else call.language.split("-")[0])
        return scheduler.submit(Utterance(call.id, seg.leg, seg.start_s, seg.end_s, seg.audio, 8000, lang))

    return scheduler, submit


def load_whisper(settings: Settings) -> Any:
    """The Whisper model on the configured device: int8 on CPU, float16 on a GPU unless told otherwise."""
    from models.whisper import load_model

    return load_model(settings.model, threads=settings.asr_threads, compute_type=settings.asr_compute_type,
                      device=settings.asr_device, workers=settings.asr_workers)


@dataclass
class WorkerState:
    """This worker among several sharing a database: its id, and how its heartbeat is going (/metrics)."""

    id: str
    heartbeats: int = 0
    heartbeat_failures: int = 0
    orphans_closed: int = 0
    healthy: bool = True


async def _close_orphans(store: CallStore, w: WorkerState, timeout_s: float, *, startup: bool = False) -> None:
    closed = await asyncio.to_thread(store.close_orphaned_calls, w.id, timeout_s, startup=startup)
    w.orphans_closed += len(closed)
    for call in closed:
        log.warning("call %s was left live by %s: closed as interrupted after %.1f s of audio",
                    call["id"], "this worker's previous run" if startup else "a worker that stopped responding",
                    call["duration"])


def _dead_local_workers(store: CallStore, me: str) -> list[str]:
    """Workers with a default id (hostname-pid) of this host whose process is gone: a crash here, restarted.
    Waiting out the heartbeat timeout would leave their calls reading as live for no reason."""
    host, dead = socket.gethostname(), []
    for wid in store.worker_ids():
        name, _, pid = wid.rpartition("-")
        if wid == me or name != host or not pid.isdigit() or int(pid) in (0, os.getpid()):
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(wid)
        except OSError:
            pass  # it exists but is not ours to signal: alive
    return dead


def _recover_recordings(store: CallStore, directory: Path, policy: str) -> list[str]:
    """Raw audio left by a crash belongs to calls that are closed as interrupted by now: keep it as their
    recording where the policy would have (``all``, or ``flagged`` and the call was), else delete it. Audio of
    a call that some other worker still follows is left alone."""
    kept = []
    for part in sorted(directory.glob("*.part")) if directory.exists() else ():
        call_id = part.stem
        call = store.get_call(call_id)
        if call is not None and call["status"] == "live":
            continue
        keep = call is not None and (policy == "all" or (policy == "flagged" and bool(call["flagged"])))
        path = recording.RawRecorder(directory, call_id).finish(keep)
        if path is not None:
            store.write([("recording", (call_id, str(path)))])
            kept.append(call_id)
    return kept


async def _keep_alive(app: Starlette) -> None:
    """Tell the shared database this worker is alive, and close the calls of workers that are not."""
    s: Settings = app.state.settings
    store: CallStore = app.state.store
    w: WorkerState = app.state.worker
    while True:
        await asyncio.sleep(s.heartbeat_s)
        try:
            await asyncio.to_thread(store.heartbeat, w.id)
            w.heartbeats += 1
            await _close_orphans(store, w, s.worker_timeout_s)
        except Exception as e:  # the database is away: keep trying; the calls go on regardless
            w.heartbeat_failures += 1
            if w.healthy:
                log.warning("worker %s cannot reach the database for its heartbeat: %s", w.id, e)
            w.healthy = False
            continue
        if not w.healthy:
            log.info("worker %s: heartbeat back", w.id)
        w.healthy = True


async def _sweep_forever(app: Starlette) -> None:
    s: Settings = app.state.settings
    while True:
        before = time.time() - s.retention_days * 86400
        expired = await asyncio.to_thread(app.state.store.expired_recordings, before)
        if expired:
            await asyncio.to_thread(recording.expire, [p for _, p in expired])
            for call_id, _ in expired:
                app.state.writer.db("recording", (call_id, None))
        await asyncio.sleep(RETENTION_SWEEP_S)


def _shown(url: str) -> str:
    """A database URL for the log, without its password."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('@')[-1]}" if "@" in rest else url


def create_app(settings: Settings, *, submit: Submit | None = None) -> Starlette:
    """``submit`` overrides the transcription hook (None with ``settings.no_asr`` means no ASR)."""
    settings = ensure_secret(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        w = WorkerState(settings.worker)
        store = await asyncio.to_thread(open_store, settings.database_url, worker_id=w.id)
        # This worker's calls from its previous run, and those of workers gone silent, are over.
        for dead in await asyncio.to_thread(_dead_local_workers, store, w.id):
            log.warning("worker %s of this host is gone (its process has exited): closing its calls", dead)
            await asyncio.to_thread(store.forget_worker, dead)
        await _close_orphans(store, w, settings.worker_timeout_s, startup=True)
        await asyncio.to_thread(store.heartbeat, w.id)
        recovered = await asyncio.to_thread(_recover_recordings, store, settings.data_dir / "recordings",
                                            settings.recording)
        if recovered:
            log.warning("kept the audio of %d interrupted calls as their recordings: %s", len(recovered),
                        ", ".join(recovered[:20]))
        writer = Writer(store)
        writer.start()
        hub = await open_hub(settings.redis_url, settings.subscriber_queue, heartbeat_s=settings.heartbeat_s,
                             timeout_s=settings.worker_timeout_s)
        scheduler, hook = None, submit
        if hook is None and not settings.no_asr:
            scheduler, hook = await asyncio.to_thread(start_asr, settings)
        rt = Runtime(settings, hub, writer, submit=hook)
        app.state.store, app.state.writer, app.state.hub, app.state.runtime = store, writer, hub, rt
        app.state.scheduler, app.state.worker = scheduler, w
        sweeper = asyncio.create_task(_sweep_forever(app))
        watcher = asyncio.create_task(_watch_loop(rt))
        keeper = asyncio.create_task(_keep_alive(app))
        log.info("callwatch ready: worker %s, db %s, ASR %s, recording policy %s", w.id, _shown(settings.database_url),
                 "on" if hook else "off", settings.recording)
        try:
            yield
        finally:
            sweeper.cancel()
            watcher.cancel()
            await rt.close_all()
            await close_hub(hub)  # after the calls end, so their call_ended reaches the other workers
            if scheduler is not None:
                await scheduler.aclose()
            await writer.close(settings.shutdown_timeout_s)
            # Heartbeats go on until every call is stored as ended: nobody may close them as orphans meanwhile.
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(Exception):
                await asyncio.to_thread(store.forget_worker, w.id)
            await asyncio.to_thread(store.close)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec())

    routes = [
        WebSocketRoute("/v1/ingest/native", ws_ingest.native),
        WebSocketRoute("/v1/ingest/twilio", ws_ingest.twilio),
        WebSocketRoute("/v1/ingest/audiohook", ws_ingest.audiohook),
        WebSocketRoute("/v1/ws/agent", ws_subscribe.agent),
        WebSocketRoute("/v1/ws/supervisor", ws_subscribe.supervisor),
        WebSocketRoute("/v1/ws/listen/{call_id}", ws_subscribe.listen),
        Route("/v1/calls", http_api.list_calls),
        Route("/v1/calls/{call_id}", http_api.get_call),
        Route("/v1/calls/{call_id}/events", http_api.call_events),
        Route("/v1/calls/{call_id}/transcript", http_api.call_transcript),
        Route("/v1/calls/{call_id}/recording", http_api.call_recording),
        Route("/v1/calls/{call_id}/notes", http_api.add_note, methods=["POST"]),
        Route("/healthz", http_api.healthz),
        Route("/metrics", http_api.metrics),
        Route("/openapi.json", openapi),
        *coaching_api.routes(),
        *page_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_api.http_error})
    app.state.settings = settings
    return app
