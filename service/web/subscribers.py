"""Subscriber websockets: agents' screens, the supervisors' board, and listen-in audio.

Each connection drains its own bounded queue from the hub; when the hub cuts a laggard off, the ``None``
it leaves ends the connection (close 1008 with a reason) and the screen reconnects to fresh state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from service.analysis.wire import CallEvent
from service.core import auth
from service.fanout.hub import Fanout, LiveCallView, TeamScope
from service.ingest.common import CLOSE_NORMAL, CLOSE_POLICY
from service.ingest.refuse import FORBIDDEN, UNAUTHORIZED, deny
from service.live.pipeline import Runtime
from service.live.state import runtime as _runtime
from service.web.rest import team_scope

log = logging.getLogger("callwatch.subscribe")


def claims_of(ws: WebSocket, secret: str) -> auth.Claims | None:
    try:
        return auth.claims(secret, ws.headers, ws.query_params)
    except auth.AuthError:
        return None


async def _until_closed(ws: WebSocket) -> None:
    """Subscribers send nothing we need; reading is how a hang-up is noticed."""
    with contextlib.suppress(WebSocketDisconnect):
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass


async def _serve(ws: WebSocket, queue: asyncio.Queue[Any], send: Callable[[Any], Awaitable[None]],
                 on_end: Callable[[], None], cut_off_reason: str) -> None:
    reader = asyncio.create_task(_until_closed(ws))
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                return
            item = getter.result()
            # Everything already queued goes out now: a board gets bursts (many calls end or alert at once), and
            # one event per turn of a busy event loop would leave the last of them seconds behind.
            while item is not None:
                await send(item)
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if item is None:
                await ws.close(CLOSE_POLICY if cut_off_reason else CLOSE_NORMAL, reason=cut_off_reason)
                return
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        on_end()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await reader


async def _deny_non_supervisor(ws: WebSocket, claims: auth.Claims | None) -> None:
    if claims is None:
        await deny(ws, UNAUTHORIZED, "a valid supervisor token is required")
    else:
        await deny(ws, FORBIDDEN, "this needs the supervisor role")


async def agent(ws: WebSocket) -> None:
    rt = _runtime(ws)
    claims = claims_of(ws, rt.settings.secret)
    asked = ws.query_params.get("agent_id")
    if claims is None:
        await deny(ws, UNAUTHORIZED, "a valid agent token is required")
        return
    if claims.role != "agent" or (asked is not None and asked != claims.agent_id):
        await deny(ws, FORBIDDEN, "agents may follow only their own calls")
        return
    await _subscribe(ws, rt.hub, "agent", claims.agent_id, None)


async def supervisor(ws: WebSocket) -> None:
    rt = _runtime(ws)
    claims = claims_of(ws, rt.settings.secret)
    if claims is None or claims.role != "supervisor":
        await _deny_non_supervisor(ws, claims)
        return
    call_id = ws.query_params.get("call_id")
    scope = await team_scope(ws.app.state.store, claims)
    if scope is not None and call_id is not None:
        call = _live_call(rt, call_id)
        if call is not None and not scope.admits_call(call):
            await deny(ws, FORBIDDEN, "this token is scoped to teams this call's agent is not in")
            return
    await _subscribe(ws, rt.hub, "supervisor", None, call_id, scope)


def _live_call(rt: Runtime, call_id: str) -> dict[str, Any] | None:
    """The call object of a call in progress, on this worker or another; None if it is not live."""
    here = rt.calls.get(call_id)
    if here is not None:
        return here.call_object()
    return next((v.call for v in rt.hub.calls_elsewhere() if v.call["id"] == call_id), None)


def live_here(rt: Runtime) -> list[LiveCallView]:
    """This worker's calls in progress, as they are now."""
    return [LiveCallView(call.call_object(), call.agent_id, call.t) for call in list(rt.calls.values())]


async def _subscribe(ws: WebSocket, hub: Fanout, role: Any, agent_id: str | None, call_id: str | None,
                     scope: TeamScope | None = None) -> None:
    await ws.accept()
    raw = ws.query_params.get("types")
    types = frozenset(t for t in raw.split(",") if t) if raw else None
    sub = hub.subscribe(role, agent_id, call_id, types, scope)
    # Calls already in progress, on this worker or another, so a screen opened mid-call is not blank until the
    # next event.
    for ev in hub.snapshot(sub, live_here(_runtime(ws))):
        await ws.send_text(ev.json)

    async def send(ev: CallEvent) -> None:
        await ws.send_text(ev.json)

    await _serve(ws, sub.queue, send, lambda: hub.unsubscribe(sub), "too slow: fell behind")


async def listen(ws: WebSocket) -> None:
    rt = _runtime(ws)
    claims = claims_of(ws, rt.settings.secret)
    call_id = ws.path_params["call_id"]
    if claims is None or claims.role != "supervisor":
        await _deny_non_supervisor(ws, claims)
        return
    scope = await team_scope(ws.app.state.store, claims)
    call = _live_call(rt, call_id) if scope is not None else None
    if scope is not None and call is not None and not scope.admits_call(call):
        await deny(ws, FORBIDDEN, "this token is scoped to teams this call's agent is not in")
        return
    if call_id not in rt.calls and not rt.hub.is_live_elsewhere(call_id):
        await ws.accept()
        await ws.send_json({"type": "error", "code": "not_live", "message": f"call {call_id} is not live"})
        await ws.close(CLOSE_NORMAL)
        return
    await ws.accept()
    lst = rt.hub.listen(call_id)
    await _serve(ws, lst.queue, ws.send_bytes, lambda: rt.hub.unlisten(lst), "")
