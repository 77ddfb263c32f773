"""``callwatch replay``: stream a recorded call to a running service as a live call and time its alerts.

It subscribes as the agent, sends the call (``--calls N`` copies at once, for load), prints each alert with
its end-to-end latency, and ends with one JSON line:
``{"calls": N, "alerts": K, "latency_ms": {"p50", "p95", "max"}, "errors": E}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile as sf
from numpy.typing import NDArray
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio.events import RATE
from audio.pcm import resample
from service.cli.replay_senders import SENDERS, SendLog, Target
from service.core import auth
from service.core.settings import SettingsError, load

T = TypeVar("T")

END_WAIT_S = 60.0
"""How long after the last audio to wait for the service to end each call (transcripts may hold it)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("call", nargs="?", type=Path, help="stereo WAV: channel 0 customer, 1 agent")
    p.add_argument("--customer", type=Path, help="customer leg (mono WAV), with --agent")
    p.add_argument("--agent", type=Path, help="agent leg (mono WAV), with --customer")
    p.add_argument("--url", default="ws://127.0.0.1:8080", help="the service, ws://host:port")
    p.add_argument("--protocol", choices=tuple(SENDERS), default="native")
    p.add_argument("--speed", type=float, default=1.0, help="pace relative to real time (default 1)")
    p.add_argument("--agent-id", default="replay-agent")
    p.add_argument("--language", default="auto")
    p.add_argument("--calls", type=int, default=1, help="how many copies of the call to run at once")
    p.add_argument("--rotate", action="store_true",
                   help="with --calls N: copy k starts k/N of the way into the call and wraps around, so the copies "
                   "run side by side without speaking in lockstep, as a floor's calls do")
    p.add_argument("--token", help="ingest token (default: signed with the configured secret)")
    p.add_argument("--agent-token", help="agent token (default: signed with the configured secret)")


def load_legs(args: argparse.Namespace) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    if args.customer and args.agent:
        legs = [_read(args.customer)[:, 0], _read(args.agent)[:, 0]]
    elif args.call:
        x = _read(args.call)
        if x.shape[1] < 2:
            raise ValueError(f"{args.call} is mono: give a stereo file or --customer and --agent")
        legs = [x[:, 0], x[:, 1]]
    else:
        raise ValueError("give CALL.wav or --customer C.wav --agent A.wav")
    n = min(len(legs[0]), len(legs[1]))
    return np.ascontiguousarray(legs[0][:n]), np.ascontiguousarray(legs[1][:n])


def _read(path: Path) -> NDArray[np.int16]:
    x, rate = sf.read(path, dtype="int16", always_2d=True)
    if rate != RATE:
        x = np.stack([resample(np.ascontiguousarray(x[:, i]), rate, RATE) for i in range(x.shape[1])], axis=1)
    return np.asarray(x, dtype=np.int16)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


class Replay:
    def __init__(self, args: argparse.Namespace, ingest_token: str, agent_token: str,
                 secrets: tuple[str, str, str]) -> None:
        self.args = args
        self.base = args.url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://")
        self.ingest_token, self.agent_token, self.secrets = ingest_token, agent_token, secrets
        self.logs: dict[str, SendLog] = {}
        self.latencies: list[float] = []
        self.transcript_lags: list[float] = []
        """Milliseconds from sending the end of an utterance's audio to receiving its transcript."""
        self.errors = 0
        self.alerts = 0
        self.own_lag_max = 0.0
        self.ended: set[str] = set()
        self._all_ended = asyncio.Event()

    async def _watch_own_lag(self, every_s: float = 0.05) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + every_s
            await asyncio.sleep(every_s)
            self.own_lag_max = max(self.own_lag_max, loop.time() - due)

    async def run(self, customer: NDArray[np.int16], agent: NDArray[np.int16]) -> dict[str, Any]:
        run_id = uuid.uuid4().hex[:8]
        ids = [f"replay-{run_id}-{i}" for i in range(self.args.calls)]
        self.logs = {cid: SendLog() for cid in ids}
        headers = {"Authorization": f"Bearer {self.agent_token}"}
        # Only what it measures: a load test's own screen must not be what falls behind.
        url = f"{self.base}/v1/ws/agent?types=alert,call_ended,utterance"
        lag = asyncio.create_task(self._watch_own_lag())
        async with connect(url, additional_headers=headers) as sub:
            listener = asyncio.create_task(self._listen(sub, set(ids)))
            legs = [rotated(customer, agent, k, len(ids)) if self.args.rotate else (customer, agent)
                    for k in range(len(ids))]
            results = await asyncio.gather(*(self._send(cid, *leg) for cid, leg in zip(ids, legs, strict=True)),
                                           return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    self.errors += 1
                    print(f"error: {r}", file=sys.stderr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_ended.wait(), END_WAIT_S)
            self.errors += len(set(ids) - self.ended)
            listener.cancel()
        lag.cancel()
        summary: dict[str, Any] = {
            "calls": self.args.calls, "alerts": self.alerts,
            "latency_ms": {"p50": percentile(self.latencies, 50), "p95": percentile(self.latencies, 95),
                           "max": round(max(self.latencies), 1) if self.latencies else None},
            "errors": self.errors,
            # A late timer here means this process, not the service, made some of that latency.
            "generator_lag_max_ms": round(self.own_lag_max * 1000, 1)}
        if self.transcript_lags:
            lags = self.transcript_lags
            summary["transcripts"] = len(lags)
            summary["transcript_ms"] = {"p50": percentile(lags, 50), "p95": percentile(lags, 95),
                                        "max": round(max(lags), 1)}
        return summary

    async def _send(self, call_id: str, customer: NDArray[np.int16], agent: NDArray[np.int16]) -> None:
        tg = Target(self.base, call_id, self.args.agent_id, self.args.language, self.args.speed,
                    self.ingest_token, *self.secrets)
        await SENDERS[self.args.protocol](tg, customer, agent, self.logs[call_id])

    async def _listen(self, sub: Any, ids: set[str]) -> None:
        try:
            await self._read(sub, ids)
        except ConnectionClosed as e:
            print(f"error: the agent subscription closed: {e}", file=sys.stderr)
        self._all_ended.set()  # nothing more can arrive; calls not seen ending count as errors

    async def _read(self, sub: Any, ids: set[str]) -> None:
        async for raw in sub:
            received = time.perf_counter()
            ev = json.loads(raw)
            cid = ev.get("call_id")
            if cid not in ids:
                continue
            if ev.get("type") == "utterance":
                sent = self.logs[cid].sent_when(float(ev["end"]))
                if sent is not None:
                    self.transcript_lags.append((received - sent) * 1000)
                continue
            if ev.get("type") == "alert":
                self.alerts += 1
                sent = self.logs[cid].sent_when(float(ev["t"]))
                latency = None if sent is None else (received - sent) * 1000
                if latency is not None:
                    self.latencies.append(latency)
                shown = "?" if latency is None else f"{latency:.0f} ms"
                print(f"{cid} t={ev['t']:.1f}s {ev['severity']:<8} {ev['rule']}: {ev['message']} "
                      f"(latency {shown})", flush=True)
            elif ev.get("type") == "call_ended":
                self.ended.add(cid)
                if self.ended >= ids:
                    self._all_ended.set()


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """uvloop where installed (as ``serve`` gets from uvicorn): a load generator's own event-loop overhead
    takes the processor from the service it measures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def rotated(customer: NDArray[np.int16], agent: NDArray[np.int16], k: int, copies: int
            ) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """Copy ``k`` of ``copies``: both legs started ``k/copies`` of the way in (on a 20 ms frame) and wrapped."""
    frame = RATE // 50
    shift = (customer.size * k // copies) // frame * frame
    return np.roll(customer, -shift), np.roll(agent, -shift)


def run(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.speed <= 0:
        print("callwatch replay: --calls must be >= 1 and --speed > 0", file=sys.stderr)
        return 2
    try:
        customer, agent = load_legs(args)
        settings = load(os.environ)
        if not (args.token and args.agent_token):
            settings = auth.ensure_secret(settings)
        ingest = args.token or auth.issue(settings.secret, "ingest", ttl_s=3600)
        agent_token = args.agent_token or auth.issue(settings.secret, "agent", args.agent_id, ttl_s=3600)
    except (ValueError, SettingsError, OSError, sf.LibsndfileError) as e:
        print(f"callwatch replay: {e}", file=sys.stderr)
        return 2
    replay = Replay(args, ingest, agent_token, (settings.audiohook_api_key, settings.audiohook_client_secret,
                                                settings.twilio_auth_token))
    try:
        summary = run_loop(replay.run(customer, agent))
    except OSError as e:
        summary = {"calls": args.calls, "alerts": 0, "latency_ms": {"p50": None, "p95": None, "max": None},
                   "errors": args.calls}
        print(f"callwatch replay: cannot reach {args.url}: {e}", file=sys.stderr)
    print(json.dumps(summary), flush=True)
    return 0 if summary["errors"] == 0 else 1
