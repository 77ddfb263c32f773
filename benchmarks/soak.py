"""Soak: one ``callwatch serve`` under a steady load of live calls for a long time; memory and latency must
stay flat. A benchmark, not a CI test (an hour at 100 calls by default).

    python -m benchmarks.soak [--calls 100] [--minutes 60] [--seconds 40] [--asr]

One server runs throughout. Round after round, ``callwatch replay --calls N`` streams N copies of a labelled
call excerpt at real-time pace (new call ids each round), and reports the round's alert latency (audio sent
-> alert at the agent's socket). While the calls stream, the server's event-loop lag (the
``callwatch_event_loop_lag_seconds`` gauge) and a ``/healthz`` round trip are sampled every two seconds, and
each round reports their worst; after it, the server's resident memory. The verdict compares the last third
of the run with the first third: memory within ``--rss-slack`` (default 10 %) and alert latency p95 within
``--latency-slack`` (default 50 %, and 0.2 s) count as flat; the loop lag and ``/healthz`` of both thirds are
reported alongside. A run in which any call failed, or a round's p95 exceeded ``--max-latency`` (1 s), did
not keep up (``kept_up``: false, exit status 1): it measured a machine short of processor time, not drift.
The last line is one JSON object with every round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.capacity import CALLWATCH, REPO, bench_env, call_to_stream, excerpt, free_port, metrics


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def healthz_ms(port: int) -> float:
    t0 = time.perf_counter()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30).read()
    return round((time.perf_counter() - t0) * 1000, 1)


class Sampler(threading.Thread):
    """Samples the loop lag gauge and a /healthz round trip every ``every_s`` while a round streams (the
    server's own lag maximum is since its start, so it cannot show a trend)."""

    def __init__(self, port: int, every_s: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.port, self.every_s = port, every_s
        self.stop = threading.Event()
        self.lag_s: list[float] = []
        self.healthz_ms: list[float] = []
        self.failures = 0

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                self.lag_s.append(metrics(self.port).get("callwatch_event_loop_lag_seconds", float("nan")))
                self.healthz_ms.append(healthz_ms(self.port))
            except OSError:
                self.failures += 1

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        self.join()
        return {"loop_lag_max_s": round(max(self.lag_s), 3) if self.lag_s else None,
                "healthz_max_ms": max(self.healthz_ms) if self.healthz_ms else None,
                "healthz_p50_ms": statistics.median(self.healthz_ms) if self.healthz_ms else None,
                "probe_failures": self.failures}


def p95_s(summary: dict[str, Any]) -> float | None:
    p95 = (summary.get("latency_ms") or {}).get("p95")
    return None if p95 is None else round(float(p95) / 1000, 3)


def thirds(values: list[float]) -> tuple[float, float]:
    k = max(1, len(values) // 3)
    return statistics.median(values[:k]), statistics.median(values[-k:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--seconds", type=float, default=40.0, help="length of each call (default 40)")
    p.add_argument("--asr", action="store_true", help="with transcription (default: signals only)")
    p.add_argument("--call", type=Path, help="a stereo 8 kHz WAV to stream (default: a shared labelled call)")
    p.add_argument("--rss-slack", type=float, default=0.10)
    p.add_argument("--latency-slack", type=float, default=0.50)
    p.add_argument("--max-latency", type=float, default=1.0,
                   help="a round's alert latency p95 beyond this (s) means the machine did not keep up (default 1)")
    args = p.parse_args(argv)
    env = bench_env()
    port = free_port()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as data:
        # From 30 s into the shared call: the stretch with interruptions, so every round has alerts to time.
        call = excerpt(call_to_stream(args.call), 30.0 if args.call is None else 0.0, args.seconds,
                       Path(data) / "call.wav")
        run_env = {**env, "CALLWATCH_DATA_DIR": data}
        serve = [*CALLWATCH, "serve", "--port", str(port), "--recording", "none", "--log-level", "warning",
                 "--max-connections-per-address", "0"]  # the load generator is one address
        server = subprocess.Popen(serve + ([] if args.asr else ["--no-asr"]), env=run_env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(240):
                try:
                    healthz_ms(port)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise SystemExit("the service did not start")
            began = time.monotonic()
            n = 0
            while time.monotonic() - began < args.minutes * 60:
                n += 1
                sampler = Sampler(port)
                sampler.start()
                replay = subprocess.run([*CALLWATCH, "replay", str(call), "--url", f"ws://127.0.0.1:{port}",
                                         "--calls", str(args.calls), "--language", "en", "--rotate"],
                                        env=run_env, cwd=REPO, capture_output=True, text=True)
                lines = [x for x in replay.stdout.splitlines() if x.startswith("{")]
                summary: dict[str, Any] = json.loads(lines[-1]) if lines else {"failed": replay.stderr[-300:]}
                probes = sampler.finish()
                errors = [x for x in replay.stderr.splitlines() if x.startswith(("error", "callwatch replay:"))]
                row = {"round": n, "minute": round((time.monotonic() - began) / 60, 1),
                       "rss_mb": round(rss_mb(server.pid), 1), **probes,
                       "alert_latency_p95_s": p95_s(summary), "alerts": summary.get("alerts"),
                       "errors": summary.get("errors", summary.get("failed")),
                       # A late timer in the load generator, or a machine busy with more than this run, means
                       # the latency was not all the service's own.
                       "generator_lag_max_s": round(float(summary.get("generator_lag_max_ms") or 0) / 1000, 3),
                       "load_avg_1m": round(os.getloadavg()[0], 1),
                       **({"first_error": errors[0][:200]} if errors else {})}
                rounds.append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    rss = [r["rss_mb"] for r in rounds]
    lat = [float(r["alert_latency_p95_s"]) for r in rounds if isinstance(r["alert_latency_p95_s"], int | float)]
    verdict: dict[str, Any] = {"calls": args.calls, "minutes": args.minutes, "rounds": rounds}
    if len(rss) >= 3:
        first, last = thirds(rss)
        verdict["rss_flat"] = last <= first * (1 + args.rss_slack)
        verdict["rss_mb_first_last"] = [first, last]
    if len(lat) >= 3:
        first, last = thirds(lat)
        verdict["latency_flat"] = last <= max(first * (1 + args.latency_slack), first + 0.2)
        verdict["alert_latency_p95_first_last"] = [first, last]
    for key in ("loop_lag_max_s", "healthz_max_ms", "generator_lag_max_s", "load_avg_1m"):
        seen = [float(r[key]) for r in rounds if isinstance(r[key], int | float)]
        if len(seen) >= 3:
            verdict[f"{key.removesuffix('_s').removesuffix('_ms')}_first_last"] = list(thirds(seen))
    verdict["probe_failures"] = sum(r["probe_failures"] for r in rounds)
    # Flat is not enough: a run whose calls failed, or whose alerts came late throughout, measured a machine
    # that could not carry the load, not the service's drift.
    verdict["call_errors"] = sum(r["errors"] if isinstance(r["errors"], int) else args.calls for r in rounds)
    verdict["kept_up"] = verdict["call_errors"] == 0 and all(x <= args.max_latency for x in lat)
    print(json.dumps(verdict))
    return 0 if verdict.get("rss_flat", True) and verdict.get("latency_flat", True) and verdict["kept_up"] else 1


if __name__ == "__main__":
    sys.exit(main())
