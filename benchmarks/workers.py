"""One worker against two on the same machine: how many concurrent live calls each follows in real time.

    python -m benchmarks.workers [--calls 100,200,300] [--seconds 20] [--budget-ms 1000] [--embedded]

For each load N, first one and then two ``callwatch serve`` processes (signals only) share a PostgreSQL
database and a Redis bus, as in a deployment (``--embedded``: one SQLite file per worker and no bus
instead). The load generator is the same in both cases: two ``callwatch replay --calls N/2`` processes,
each its own agent, sending to worker ``i mod workers`` (no load balancer: the generator targets the ports
itself). Everything shares this machine's cores, the generator and the database included.

Reported per run: alert latency p50/p95/max over both generators (audio sent -> alert at the agent's
socket), errors, each worker's CPU (seconds of CPU per second of wall time), the generators' CPU, the
throwaway PostgreSQL and Redis servers' CPU, and the worst event-loop lag. A load is *sustained* when it
has no errors and p95 is within ``--budget-ms``; the ratio is the largest sustained load with two workers
over that with one. The last line is one JSON object.

The throwaway PostgreSQL and Redis servers come from ``tests/scale/servers.py`` (or give ``--db`` and
``--redis``); the helpers that start, measure and read a worker are ``benchmarks.capacity``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.capacity import CALLWATCH, REPO, bench_env, call_to_stream, cpu_seconds, excerpt, free_port, metrics

LATENCY = re.compile(r"\(latency (\d+(?:\.\d+)?) ms\)")
GENERATORS = 2
_databases = itertools.count(1)


@contextlib.contextmanager
def shared_servers(db: str | None, redis: str | None) -> Iterator[tuple[str, str, list[int]]]:
    """A PostgreSQL URL (a fresh database is made per run), a Redis URL (the given ones, or throwaway), and
    the process ids of the throwaway servers, whose CPU is measured too."""
    from tests.scale.servers import PostgresServer, RedisServer, pg_missing, redis_missing

    pids: list[int] = []
    with contextlib.ExitStack() as stack:
        if db is None:
            reason = pg_missing()
            if reason:
                raise SystemExit(f"{reason}; or run with --embedded")
            pg = PostgresServer()
            stack.callback(pg.destroy)
            pg.init()
            pg.start()
            db = pg.url()
            pids.append(int((pg.data / "postmaster.pid").read_text().split()[0]))
        if redis is None:
            reason = redis_missing()
            if reason:
                raise SystemExit(f"{reason}; or run with --embedded")
            rs = RedisServer()
            stack.callback(rs.destroy)
            rs.start()
            redis = rs.url
            assert rs.proc is not None
            pids.append(rs.proc.pid)
        yield db, redis, pids


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (PostgreSQL is a postmaster and its backends)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
        todo += children.get(p, [])
    return total


def fresh_database(server_url: str) -> str:
    import psycopg

    name = f"bench_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return server_url.rsplit("/", 1)[0] + "/" + name


def wait_healthy(port: int, proc: subprocess.Popen[str]) -> None:
    for _ in range(240):
        if proc.poll() is not None:
            raise SystemExit(f"a worker exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("a worker did not start")


def run_load(n: int, workers: int, call: Path, env: dict[str, str],
             shared: tuple[str, str, list[int]] | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        db = fresh_database(shared[0]) if shared else None
        ports, procs = [], []
        try:
            for w in range(workers):
                port = free_port()
                cmd = [*CALLWATCH, "serve", "--port", str(port), "--no-asr", "--recording", "none",
                       "--log-level", "warning", "--worker-id", f"bench-{w}", "--data-dir", f"{data}/w{w}"]
                if shared and db:
                    cmd += ["--db", db, "--redis", shared[1]]
                procs.append(subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.PIPE, text=True))
                ports.append(port)
            for port, proc in zip(ports, procs, strict=True):
                wait_healthy(port, proc)
            shares = [n // GENERATORS + (1 if g < n % GENERATORS else 0) for g in range(GENERATORS)]
            servers = shared[2] if shared else []
            cpu0 = [cpu_seconds(p.pid) for p in procs]
            servers0 = sum(tree_cpu(pid) for pid in servers)
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            replays = [subprocess.Popen([*CALLWATCH, "replay", str(call), "--url",
                                         f"ws://127.0.0.1:{ports[g % workers]}", "--calls", str(k),
                                         "--agent-id", f"bench-agent-{g}", "--language", "en"],
                                        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                       for g, k in enumerate(shares) if k]
            outputs = [r.communicate() for r in replays]
            wall = time.perf_counter() - t0
            children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            worker_cpu = [round((cpu_seconds(p.pid) - c) / wall, 2) for p, c in zip(procs, cpu0, strict=True)]
            servers_cpu = (sum(tree_cpu(pid) for pid in servers) - servers0) / wall
            lag = max(metrics(port).get("callwatch_event_loop_lag_seconds_max", float("nan")) for port in ports)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:  # an overloaded worker still draining: this run is over anyway
                    proc.kill()
                    proc.wait()
    latencies: list[float] = []
    alerts = errors = 0
    for out, err in outputs:
        latencies += [float(m.group(1)) for m in LATENCY.finditer(out)]
        last = [line for line in out.splitlines() if line.startswith("{")]
        if not last:
            return {"calls": n, "workers": workers, "failed": (err or out)[-500:]}
        summary = json.loads(last[-1])
        alerts += summary["alerts"]
        errors += summary["errors"]
    gen_cpu = (children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime) / wall

    def pct(q: float) -> float | None:
        return round(float(np.percentile(latencies, q)), 1) if latencies else None

    return {"calls": n, "workers": workers, "alerts": alerts, "errors": errors,
            "latency_ms": {"p50": pct(50), "p95": pct(95), "max": round(max(latencies), 1) if latencies else None},
            "worker_cpu_per_wall": worker_cpu, "generator_cpu_per_wall": round(gen_cpu, 2),
            "db_bus_cpu_per_wall": round(servers_cpu, 2),
            "loop_lag_max_s": round(lag, 3)}


def sustained(runs: list[dict[str, Any]], workers: int, budget_ms: float) -> int:
    ok = [r["calls"] for r in runs if r["workers"] == workers and "failed" not in r and r["errors"] == 0
          and r["latency_ms"]["p95"] is not None and r["latency_ms"]["p95"] <= budget_ms]
    return max(ok, default=0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--calls", default="100,200,300", help="comma-separated loads to try")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each streamed call")
    p.add_argument("--budget-ms", type=float, default=1000.0, help="alert latency p95 a sustained load keeps")
    p.add_argument("--embedded", action="store_true", help="SQLite per worker and no bus, not PostgreSQL + Redis")
    p.add_argument("--db", help="PostgreSQL server URL to make the databases in (default: a throwaway cluster)")
    p.add_argument("--redis", help="Redis URL (default: a throwaway server)")
    p.add_argument("--call", type=Path, help="stereo call to stream (default: a shared labelled call)")
    args = p.parse_args(argv)
    source = call_to_stream(args.call)
    env = bench_env()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        shared = None if args.embedded else stack.enter_context(shared_servers(args.db, args.redis))
        # 38-58 s of the labelled call holds two interruptions by the agent (42.7 s, 52.9 s): alerts to time.
        call = excerpt(source, 38.0 if args.call is None else 0.0, args.seconds, Path(tmp) / "call.wav")
        print(f"{'calls':>6s} {'workers':>7s} {'alerts':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} "
              f"{'errors':>7s} {'cpu per worker':>15s} {'generator':>9s} {'pg+redis':>8s} {'loop lag':>9s}",
              flush=True)
        for n in (int(x) for x in args.calls.split(",")):
            for workers in (1, 2):
                r = run_load(n, workers, call, env, shared)
                runs.append(r)
                if "failed" in r:
                    print(f"{n:6d} {workers:7d} failed: {r['failed']}", flush=True)
                    continue
                lat = r["latency_ms"]
                cpu = "/".join(f"{c:.2f}" for c in r["worker_cpu_per_wall"])
                print(f"{n:6d} {workers:7d} {r['alerts']:7d} {lat['p50'] or 0:8.0f} {lat['p95'] or 0:8.0f} "
                      f"{lat['max'] or 0:8.0f} {r['errors']:7d} {cpu:>15s} {r['generator_cpu_per_wall']:9.2f} "
                      f"{r['db_bus_cpu_per_wall']:8.2f} {r['loop_lag_max_s']:9.3f}", flush=True)
    one, two = sustained(runs, 1, args.budget_ms), sustained(runs, 2, args.budget_ms)
    ratio = round(two / one, 2) if one else None
    print(f"sustained (no errors, alert p95 <= {args.budget_ms:.0f} ms): 1 worker {one} calls, "
          f"2 workers {two} calls, ratio {ratio} (on {os.cpu_count()} cores; largest load tried "
          f"{max(r['calls'] for r in runs)})")
    print(json.dumps({"seconds": args.seconds, "backend": "embedded" if args.embedded else "postgresql+redis",
                      "cores": os.cpu_count(), "budget_ms": args.budget_ms, "sustained": {"1": one, "2": two},
                      "ratio": ratio, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
