"""The Starlette application: ``create_app(settings)`` wires the parts; uvicorn runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from service import http_api, recording, ws_ingest, ws_subscribe
from service.auth import ensure_secret
from service.hub_bus import close_hub, open_hub
from service.monitor import Segment
from service.openapi import spec
from service.pages import page_routes
from service.pipeline import LiveCall, Runtime, Submit
from service.settings import Settings
from service.stores import open_store
from service.writer import Writer

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
    from models.whisper import load_transcriber
    from service.transcription import TranscriptionScheduler

    fixed = None if settings.language == "auto" else settings.language
    transcriber = load_transcriber(settings.model, language=fixed)
    scheduler = TranscriptionScheduler(transcriber)

    def submit(call: LiveCall, seg: Segment) -> asyncio.Future[Any]:
        lang = fixed or (None if call.language in ("", "auto") else call.language.split("-")[0])
        return scheduler.submit(Utterance(call.id, seg.leg, seg.start_s, seg.end_s, seg.audio, 8000, lang))

    return scheduler, submit


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


def create_app(settings: Settings, *, submit: Submit | None = None) -> Starlette:
    """``submit`` overrides the transcription hook (None with ``settings.no_asr`` means no ASR)."""
    settings = ensure_secret(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await asyncio.to_thread(open_store, settings.database_url)
        stale = await asyncio.to_thread(store.close_stale_calls, time.time())
        if stale:
            log.warning("marked %d calls left live by a previous run as interrupted", stale)
        await asyncio.to_thread(recording.sweep_orphans, settings.data_dir / "recordings")
        writer = Writer(store)
        writer.start()
        hub = await open_hub(settings.redis_url, settings.subscriber_queue)
        scheduler, hook = None, submit
        if hook is None and not settings.no_asr:
            scheduler, hook = await asyncio.to_thread(start_asr, settings)
        rt = Runtime(settings, hub, writer, submit=hook)
        app.state.store, app.state.writer, app.state.hub, app.state.runtime = store, writer, hub, rt
        app.state.scheduler = scheduler
        sweeper = asyncio.create_task(_sweep_forever(app))
        watcher = asyncio.create_task(_watch_loop(rt))
        log.info("callwatch ready: db %s, ASR %s, recording policy %s", settings.database_url,
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
            await writer.close()
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
        *page_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_api.http_error})
    app.state.settings = settings
    return app
