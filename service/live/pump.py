"""The ingest sockets: authenticate the upgrade, then one loop (``pump``) moves messages between the socket and
a protocol parser (``service.ingest``: native, Twilio, AudioHook) and hands the parser's events to a call.

The parsers do all the protocol work, through one contract (``service.ingest.common.Parser``): a message in,
a ``Reply`` out (messages to send, call events, whether to close). Whatever goes wrong with one connection
ends that connection in its protocol's way (an error message, or AudioHook's ``disconnect`` handshake), then
a close code, and closes its call cleanly with the audio received so far; it never reaches another call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from service.core import auth
from service.ingest.audiohook import AudioHookSession, check_request
from service.ingest.common import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CallAudio,
    CallGap,
    CallStart,
    CallStop,
    CallUpdate,
    Close,
    IngestError,
    IngestEvent,
    Parser,
    Reply,
    message_text,
)
from service.ingest.native import NativeIngest
from service.ingest.refuse import FORBIDDEN, UNAUTHORIZED, deny
from service.ingest.twilio import TwilioIngest, check_twilio_signature
from service.live.idle import Expired, Watched
from service.live.pipeline import LiveCall, Runtime
from service.live.state import runtime

log = logging.getLogger("callwatch.ingest")

AUTH_FAILURE_DELAY_S = 0.5
"""A fixed pause before refusing a bad credential, so timing says nothing about how close it was."""
GONE = (RuntimeError, WebSocketDisconnect, OSError)
"""What sending to a peer that has already gone raises."""


async def refuse_upgrade(ws: WebSocket, why: str, status: int = UNAUTHORIZED) -> None:
    """Refuse the upgrade itself: HTTP 401 with a JSON error saying which credential failed."""
    log.warning("refused %s from %s: %s", ws.url.path, ws.client.host if ws.client else "?", why)
    runtime(ws).stats.ingest_errors["unauthorized"] += 1
    await asyncio.sleep(AUTH_FAILURE_DELAY_S)
    await deny(ws, status, "unauthorized: " + why)


async def native(ws: WebSocket) -> None:
    rt = runtime(ws)
    if not auth.allows(rt.settings.secret, auth.token_from(ws.headers, ws.query_params), "ingest"):
        await refuse_upgrade(ws, "no valid ingest token")
        return
    await ws.accept()
    await pump(ws, rt, NativeIngest(rt.settings.max_frame_bytes))


def public_url(ws: WebSocket, base: str) -> str:
    """The URL Twilio signed: the configured public base if any, else this request's, with a wss scheme."""
    if base:
        return base.rstrip("/") + ws.url.path + (f"?{ws.url.query}" if ws.url.query else "")
    proto = ws.headers.get("x-forwarded-proto", ws.url.scheme)
    scheme = "wss" if proto in ("https", "wss") else "ws"
    return str(ws.url.replace(scheme=scheme))


async def twilio(ws: WebSocket) -> None:
    rt = runtime(ws)
    auth_token = rt.settings.twilio_auth_token
    if auth_token:
        url = public_url(ws, rt.settings.public_url)
        if not check_twilio_signature(auth_token, url, ws.headers.get("x-twilio-signature")):
            await refuse_upgrade(ws, "bad X-Twilio-Signature", FORBIDDEN)  # what Twilio's own webhook guides answer
            return
    await ws.accept()
    # Without an auth token to check the upgrade's signature, the stream's start must carry an ingest token.
    await pump(ws, rt, TwilioIngest(token_secret=None if auth_token else rt.settings.secret))


async def audiohook(ws: WebSocket) -> None:
    rt = runtime(ws)
    s = rt.settings
    headers = {k.lower(): v for k, v in ws.headers.items()}
    why = check_request(headers, ws.url.path + (f"?{ws.url.query}" if ws.url.query else ""),
                        headers.get("host", ""), s.audiohook_api_key, s.audiohook_client_secret, time.time(),
                        rt.nonces)
    if why is not None:
        await refuse_upgrade(ws, why)
        return
    await ws.accept()
    await pump(ws, rt, AudioHookSession(headers["audiohook-session-id"], headers["audiohook-organization-id"],
                                        max_frame_bytes=s.max_frame_bytes))


async def pump(ws: WebSocket, rt: Runtime, parser: Parser) -> None:
    """Drive ``parser`` with the socket's messages until the call stops, the parser closes, or the peer goes."""
    await _Pump(ws, rt, parser).run()


class _Pump:
    """One connection's loop; its state is the call, why it ends, and the close the parser asked for."""

    def __init__(self, ws: WebSocket, rt: Runtime, parser: Parser) -> None:
        self.ws, self.rt, self.parser = ws, rt, parser
        self.loop = asyncio.get_running_loop()
        self.call: LiveCall | None = None
        self.reason = "disconnect"
        """Why the call ends: the stop's reason, the refusal's code, or the peer's hang-up."""
        self.stopped = False
        self.close: Close | None = None
        """Set once the socket is to close: with what code, once ``until`` has passed or the peer hangs up."""
        self.until = 0.0
        self.watched = rt.idle.watch()
        self.deadline = self.loop.time() + rt.settings.start_timeout_s

    async def run(self) -> None:
        try:
            if await self._serve():
                with contextlib.suppress(*GONE):
                    await self.ws.close(self.close.code if self.close else CLOSE_INTERNAL)
        finally:
            self.rt.idle.unwatch(self.watched)
            if self.call is not None:
                await self._end_call(self.call)

    async def _serve(self) -> bool:
        """Returns whether the socket is still ours to close (False once the peer has hung up)."""
        while self.close is None or self.loop.time() < self.until:
            try:
                msg = await self._next()
                if msg is None:  # the peer let the grace pass without hanging up
                    return True
                if msg["type"] == "websocket.disconnect":
                    return False
                text, data = msg.get("text"), msg.get("bytes")
                reply = self.parser.receive(text if text is not None else data or b"")
                call, events = self.call, reply.events
                if call is not None and not reply.messages and reply.close is None:
                    audio = [ev for ev in events if isinstance(ev, CallAudio)]
                    if len(audio) == len(events):
                        # Nearly every message of a live call is audio and nothing else: no awaits for it.
                        for chunk in audio:
                            call.feed(chunk)
                        continue
                await self._apply(reply)
            except IngestError as err:
                await self._refuse(err)
            except WebSocketDisconnect:
                return False
            except Exception:
                log.exception("ingest connection failed")
                await self._refuse(IngestError("internal", "internal error", CLOSE_INTERNAL))
        return True

    async def _next(self) -> Message | None:
        if self.close is None:
            return await receive(self.ws, self.rt, self.watched, self.parser.started, self.deadline)
        try:
            return await self.watched.receive(self.ws.receive(), self.until - self.loop.time())
        except Expired:
            return None

    async def _apply(self, reply: Reply) -> None:
        """The events first (a call that cannot open is refused, not answered), then the replies, then the close."""
        for ev in reply.events:
            if isinstance(ev, CallStop):
                self.reason, self.stopped = ev.reason, True
                if self.call is not None:  # before the replies: an AudioHook client may reconnect at once
                    self.call.end_soon(ev.reason)
                break
            await self._event(ev)
        await self._send(reply.messages)
        if reply.close is not None:
            self._closing(reply.close)

    async def _event(self, ev: IngestEvent) -> None:
        call = self.call
        if isinstance(ev, CallStart):
            self.call = await self.rt.open_call(ev)
            await self._send(self.parser.call_opened(self.call.id))
        elif call is None:
            return
        elif isinstance(ev, CallAudio):
            call.feed(ev)
        elif isinstance(ev, CallGap):
            call.skip(ev)
        elif isinstance(ev, CallUpdate):
            call.update_language(ev.language)

    async def _send(self, messages: list[dict[str, object]]) -> None:
        for m in messages:
            await self.ws.send_text(message_text(m))

    def _closing(self, close: Close) -> None:
        now = self.loop.time()
        if self.close is None:
            self.until = now + close.grace_s
            self.watched.expired = False  # the silence that may have ended the session must not end the grace
        else:
            self.until = min(self.until, now + close.grace_s)
        self.close = close

    async def _refuse(self, err: IngestError) -> None:
        """End the connection over ``err`` in the parser's protocol; the call ends with ``err.code`` as reason."""
        if self.close is not None:  # already ending (a send failed during the grace): close at once
            log.info("ingest error %s while closing: %s", err.code, err.message)
            self.until = 0.0
            return
        self.reason = err.code
        self.rt.stats.ingest_errors[err.code] += 1
        log.info("ingest error %s: %s", err.code, err.message)
        reply = self.parser.refuse(err)
        try:
            await self._send(reply.messages)
        except GONE:
            pass  # the peer is already gone
        self._closing(reply.close or Close(err.close_code))

    async def _end_call(self, call: LiveCall) -> None:
        if not self.stopped and self.reason != "too_fast":  # audio the parser holds was accepted: analyse it
            try:
                for ev in self.parser.flush():
                    if isinstance(ev, CallAudio):
                        call.feed(ev)
            except IngestError as err:
                log.info("the last audio of call %s was refused: %s", call.id, err.message)
            except Exception:
                log.exception("the last audio of call %s could not be analysed", call.id)
        await call.close(self.reason)


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
