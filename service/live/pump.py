"""Ingest websocket handlers: authenticate the upgrade, feed the protocol parser, hand its events to a call.

The parsers do all the protocol work; these loops only move messages. Whatever goes wrong with one
connection ends that connection (an error message, then a close code) and closes its call cleanly with the
audio received so far; it never reaches another call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.core import auth
from service.ingest.audiohook import AudioHookSession, Reply, audiohook_json, check_request
from service.ingest.common import (
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CallAudio,
    CallGap,
    CallStart,
    CallStop,
    CallUpdate,
    IngestError,
    IngestEvent,
)
from service.ingest.native import NativeIngest
from service.ingest.refuse import FORBIDDEN, UNAUTHORIZED, deny
from service.ingest.twilio import TwilioIngest, check_twilio_signature
from service.live.idle import Expired, Watched
from service.live.pipeline import LiveCall, Runtime

log = logging.getLogger("callwatch.ingest")

AUTH_FAILURE_DELAY_S = 0.5
"""A fixed pause before refusing a bad credential, so timing says nothing about how close it was."""
CLOSE_GRACE_S = 5.0
"""After our AudioHook ``disconnect``, how long the client gets to send ``close`` and end the session itself."""


class Parser(Protocol):
    started: bool

    def receive_text(self, text: str) -> list[IngestEvent]: ...

    def receive_bytes(self, data: bytes) -> list[IngestEvent]: ...

    def flush(self) -> list[IngestEvent]: ...


def runtime(ws: WebSocket) -> Runtime:
    rt: Runtime = ws.app.state.runtime
    return rt


async def refuse(ws: WebSocket, why: str, status: int = UNAUTHORIZED) -> None:
    """Refuse the upgrade itself: HTTP 401 with a JSON error saying which credential failed."""
    log.warning("refused %s from %s: %s", ws.url.path, ws.client.host if ws.client else "?", why)
    runtime(ws).stats.ingest_errors["unauthorized"] += 1
    await asyncio.sleep(AUTH_FAILURE_DELAY_S)
    await deny(ws, status, "unauthorized: " + why)


def _ingest_token_ok(secret: str, token: str | None) -> bool:
    if not token:
        return False
    try:
        return auth.verify(secret, token).role == "ingest"
    except auth.AuthError:
        return False


async def native(ws: WebSocket) -> None:
    rt = runtime(ws)
    token = auth.token_from(dict(ws.headers), dict(ws.query_params))
    if not _ingest_token_ok(rt.settings.secret, token):
        await refuse(ws, "no valid ingest token")
        return
    await ws.accept()
    await pump(ws, rt, NativeIngest(rt.settings.max_frame_bytes), announce=True)


def public_url(ws: WebSocket, base: str) -> str:
    """The URL Twilio signed: the configured public base if any, else this request's, with a wss scheme."""
    if base:
        return base.rstrip("/") + ws.url.path + (f"?{ws.url.query}" if ws.url.query else "")
    proto = ws.headers.get("x-forwarded-proto", ws.url.scheme)
    scheme = "wss" if proto in ("https", "wss") else "ws"
    return str(ws.url.replace(scheme=scheme))


class _TokenCheckedTwilio(TwilioIngest):
    """Without a Twilio auth token to check signatures, the stream must carry an ingest token instead,
    as a ``<Parameter name="token">`` (Twilio stream URLs cannot carry a query string)."""

    def __init__(self, secret: str, need_token: bool) -> None:
        super().__init__()
        self.secret, self.need_token = secret, need_token

    def _start(self, msg: dict[str, object]) -> CallStart:
        start = msg.get("start")
        params = start.get("customParameters") if isinstance(start, dict) else None
        token = params.pop("token", None) if isinstance(params, dict) else None
        if self.need_token and not _ingest_token_ok(self.secret, token if isinstance(token, str) else None):
            raise IngestError("unauthorized", "customParameters.token is not a valid ingest token", CLOSE_POLICY)
        return super()._start(msg)


async def twilio(ws: WebSocket) -> None:
    rt = runtime(ws)
    auth_token = rt.settings.twilio_auth_token
    if auth_token:
        url = public_url(ws, rt.settings.public_url)
        if not check_twilio_signature(auth_token, url, ws.headers.get("x-twilio-signature")):
            await refuse(ws, "bad X-Twilio-Signature", FORBIDDEN)  # what Twilio's own webhook guides answer
            return
    await ws.accept()
    await pump(ws, rt, _TokenCheckedTwilio(rt.settings.secret, need_token=not auth_token), announce=False)


async def pump(ws: WebSocket, rt: Runtime, parser: Parser, *, announce: bool) -> None:
    call: LiveCall | None = None
    reason = "disconnect"
    watched = rt.idle.watch()
    deadline = asyncio.get_running_loop().time() + rt.settings.start_timeout_s
    try:
        while True:
            msg = await receive(ws, rt, watched, parser.started, deadline)
            if msg["type"] == "websocket.disconnect":
                break
            text, data = msg.get("text"), msg.get("bytes")
            events = parser.receive_text(text) if text is not None else parser.receive_bytes(data or b"")
            call, stop = await handle_events(ws, rt, call, events, announce)
            if stop is not None:
                reason = "stop"
                await ws.close(CLOSE_NORMAL)
                break
    except IngestError as err:
        reason = err.code
        await report(ws, rt, err)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("ingest connection failed")
        reason = "internal"
        await report(ws, rt, IngestError("internal", "internal error", CLOSE_INTERNAL))
    finally:
        rt.idle.unwatch(watched)
        if call is not None:
            if reason not in ("stop", "too_fast"):  # audio the parser holds was accepted: analyse it first
                try:
                    _feed_all(call, parser.flush())
                except IngestError as err:
                    log.info("the last audio of call %s was refused: %s", call.id, err.message)
                except Exception:
                    log.exception("the last audio of call %s could not be analysed", call.id)
            await call.close(reason)


def _feed_all(call: LiveCall, events: list[IngestEvent]) -> None:
    for ev in events:
        if isinstance(ev, CallAudio):
            call.feed(ev)


async def receive(ws: WebSocket, rt: Runtime, watched: Watched, started: bool, deadline: float) -> Message:
    """The next message, or IngestError if the sender is silent too long: a socket that never starts a call,
    or a call whose sender stalled, must not hold resources (or stay 'live' on the board) forever.

    Until a call starts the limit is ``deadline``, counted from the upgrade, not from the last message: a socket
    that keeps talking without ever starting (Twilio's ``connected`` every few seconds, before any credential
    is checked) is closed as surely as a silent one."""
    if started:
        limit = rt.settings.idle_timeout_s
    else:
        limit = deadline - asyncio.get_running_loop().time()
        if limit <= 0:
            raise IngestError("start_timeout", f"no call started within {rt.settings.start_timeout_s:g} s",
                              CLOSE_POLICY)
    try:
        return await watched.receive(ws.receive(), limit)
    except Expired:
        if started:
            raise IngestError("idle_timeout", f"nothing received for {limit:g} s", CLOSE_POLICY) from None
        raise IngestError("start_timeout", f"no call started within {rt.settings.start_timeout_s:g} s",
                          CLOSE_POLICY) from None


async def handle_events(ws: WebSocket, rt: Runtime, call: LiveCall | None, events: list[IngestEvent],
                        announce: bool) -> tuple[LiveCall | None, CallStop | None]:
    """Apply a message's events to the call; returns the call and the stop, if one came."""
    for ev in events:
        if isinstance(ev, CallAudio):
            if call is not None:
                call.feed(ev)
        elif isinstance(ev, CallGap):
            if call is not None:
                call.skip(ev)
        elif isinstance(ev, CallStart):
            call = await rt.open_call(ev)
            if announce:
                await ws.send_json({"type": "started", "call_id": call.id})
        elif isinstance(ev, CallUpdate):
            if call is not None:
                call.update_language(ev.language)
        elif isinstance(ev, CallStop):
            return call, ev
    return call, None


async def report(ws: WebSocket, rt: Runtime, err: IngestError) -> None:
    rt.stats.ingest_errors[err.code] += 1
    log.info("ingest error %s: %s", err.code, err.message)
    try:
        await ws.send_json(err.to_dict())
        await ws.close(err.close_code)
    except (RuntimeError, WebSocketDisconnect, OSError):
        pass  # the peer is already gone


async def audiohook(ws: WebSocket) -> None:
    rt = runtime(ws)
    s = rt.settings
    headers = {k.lower(): v for k, v in ws.headers.items()}
    why = check_request(headers, ws.url.path + (f"?{ws.url.query}" if ws.url.query else ""),
                        headers.get("host", ""), s.audiohook_api_key, s.audiohook_client_secret, time.time(),
                        rt.nonces)
    if why is not None:
        await refuse(ws, why)
        return
    await ws.accept()
    session = AudioHookSession(headers["audiohook-session-id"], headers["audiohook-organization-id"])
    call: LiveCall | None = None
    reason = "disconnect"
    watched = rt.idle.watch()
    deadline = asyncio.get_running_loop().time() + s.start_timeout_s
    try:
        while not session.closed:
            msg = await receive(ws, rt, watched, session.opened, deadline)
            if msg["type"] == "websocket.disconnect":
                break
            text, data = msg.get("text"), msg.get("bytes")
            if text is not None:
                reply: Reply = session.receive_text(text)
            else:
                reply = Reply(events=session.receive_bytes(data or b"", s.max_frame_bytes))
            # The events first: a refused call (already streaming elsewhere) must get `disconnect`, not `opened`.
            call, stop = await handle_events(ws, rt, call, reply.events, announce=False)
            if session.closed and call is not None:
                call.end_soon(session.close_reason or reason)  # before `closed`: the client may reconnect at once
            for m in reply.messages:
                await ws.send_text(audiohook_json(m))
            if stop is not None:
                reason = stop.reason
                break
            if reply.close:  # we sent `disconnect`: the client is to end the session
                reason = "refused"
                await _await_client_close(ws, rt, watched, session, CLOSE_POLICY)
                return
        if session.closed:
            await ws.close(CLOSE_NORMAL)
    except IngestError as err:
        reason = err.code
        rt.stats.ingest_errors[err.code] += 1
        log.warning("AudioHook session %s: %s: %s", session.session_id, err.code, err.message)
        # AudioHook clients understand `disconnect`; then they send `close`, and we answer `closed`.
        try:
            await ws.send_text(audiohook_json(session.message("disconnect", {"reason": "error",
                                                                          "info": err.message})))
            await _await_client_close(ws, rt, watched, session, err.close_code)
        except (RuntimeError, WebSocketDisconnect, OSError):
            pass
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("audiohook connection failed")
        reason = "internal"
        await report(ws, rt, IngestError("internal", "internal error", CLOSE_INTERNAL))
    finally:
        rt.idle.unwatch(watched)
        if call is not None:
            await call.close(session.close_reason or reason)


async def _await_client_close(ws: WebSocket, rt: Runtime, watched: Watched, session: AudioHookSession,
                              code: int) -> None:
    """After `disconnect` the client ends the session: answer its `close` with `closed` and let it close the
    socket. A client that does neither within CLOSE_GRACE_S is closed on with ``code``."""
    loop = asyncio.get_running_loop()
    until = loop.time() + CLOSE_GRACE_S
    watched.expired = False  # the silence that may have ended the session must not end this wait at once
    try:
        while loop.time() < until:
            msg = await watched.receive(ws.receive(), until - loop.time())
            if msg["type"] == "websocket.disconnect":
                return
            text = msg.get("text")
            closed = session.answer_close(text) if text is not None else None
            if closed is not None:
                await ws.send_text(audiohook_json(closed))
                code = CLOSE_NORMAL
                until = min(until, loop.time() + CLOSE_GRACE_S)
    except Expired:
        pass
    await ws.close(code)
