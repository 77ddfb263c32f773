"""How many concurrent live calls this machine follows in real time, and the alert latency at each load.

    python -m benchmarks.capacity [--calls 50,100,200] [--asr [--asr-setups 1x2,2x1]] [--rotate]
                                  [--seconds 40] [--protocol native]

For each load N it starts a fresh ``callwatch serve`` (signals only, or with transcription with ``--asr``),
streams N copies of a labelled call excerpt into it at real-time pace with ``callwatch replay --calls N``
(the load generator shares the machine), and reports the end-to-end alert latency (audio sent -> alert
received at the agent's socket), errors, the worst event-loop lag and, with ``--asr``, how long after the
end of each utterance's audio its transcript arrived, and how many utterances the scheduler dropped, for
each Whisper setup asked for (workers x threads, and optionally ``:ISOLATION``, e.g. ``1x2:shared``, which
the service reads from ``CALLWATCH_ASR_ISOLATION``, and ``~FIT_S``, e.g. ``1x2:call~0``, its
``CALLWATCH_ASR_FIT_S``) in the same run. The copies speak in lockstep unless
``--rotate`` puts them out of step (the worst case for transcription: every copy ends an utterance at once).
The last line is one JSON object with every run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
CALLWATCH = [sys.executable, "-m", "service"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def excerpt(source: Path, start_s: float, seconds: float, out: Path) -> Path:
    """``seconds`` of a stereo call from ``start_s`` as a stereo WAV; ``source`` may also be a folder holding
    the legs as ``customer.wav`` and ``agent.wav`` (the shared real call), joined channel 0 customer, 1 agent."""
    if source.is_dir():
        customer, rate = sf.read(str(source / "customer.wav"), dtype="int16")
        agent, agent_rate = sf.read(str(source / "agent.wav"), dtype="int16")
        if agent_rate != rate or customer.ndim != 1 or agent.ndim != 1:
            raise SystemExit(f"{source}: the legs must be mono WAVs at one sample rate")
        length = min(customer.size, agent.size)
        x = np.stack([customer[:length], agent[:length]], axis=1)
    else:
        x, rate = sf.read(str(source), dtype="int16", always_2d=True)
    sf.write(str(out), x[int(start_s * rate): int((start_s + seconds) * rate)], rate, subtype="PCM_16")
    return out


def metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(?:\{[^}]*\})? ([-0-9.e+]+)$", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def call_to_stream(given: Path | None) -> Path:
    """The call given, or a shared labelled call with interruptions to time; exits saying which is missing."""
    data = Path(os.environ.get("CALLWATCH_DATA", REPO.parent / "shared" / "data"))
    source = given or data / "calls" / "dev" / "dev-001-interrupting-agent.wav"
    if not source.exists():
        raise SystemExit(f"no call to stream: {source}")
    return source


def bench_env() -> dict[str, str]:
    """The environment for the services and load generators of one benchmark: a throwaway token secret."""
    return {**os.environ, "CALLWATCH_SECRET": secrets.token_hex(16), "PYTHONUNBUFFERED": "1"}


def children_cpu_seconds() -> float:
    """Processor time of the finished child processes (the load generator), user and system."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(n: int, call: Path, asr: bool, protocol: str, env: dict[str, str], rotate: bool = False
             ) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        run_env = {**env, "CALLWATCH_DATA_DIR": data}
        serve = [*CALLWATCH, "serve", "--port", str(port), "--recording", "none", "--log-level", "warning"]
        server = subprocess.Popen(serve + ([] if asr else ["--no-asr"]), env=run_env, cwd=REPO,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                raise SystemExit(f"the service did not start: {server.stderr.read() if server.stderr else ''}")
            cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
            gen0 = children_cpu_seconds()
            replay = subprocess.run([*CALLWATCH, "replay", str(call), "--url", f"ws://127.0.0.1:{port}",
                                     "--calls", str(n), "--protocol", protocol, "--language", "en"]
                                    + (["--rotate"] if rotate else []),
                                    env=run_env, cwd=REPO, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            server_cpu = cpu_seconds(server.pid) - cpu0
            generator_cpu = children_cpu_seconds() - gen0
            m = metrics(port)
        finally:
            server.terminate()
            try:
                # A batch of transcription in progress, on a loaded machine, can outlast the shutdown's limits.
                server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    lines = [line for line in replay.stdout.splitlines() if line.startswith("{")]
    if replay.returncode != 0 or not lines:
        return {"calls": n, "failed": (replay.stderr or replay.stdout)[-500:]}
    summary: dict[str, Any] = json.loads(lines[-1])
    summary.update({
        "server_cpu_per_wall": round(server_cpu / wall, 2),
        "generator_cpu_per_wall": round(generator_cpu / wall, 2),
        "loop_lag_max_s": round(m.get("callwatch_event_loop_lag_seconds_max", float("nan")), 3),
    })
    if asr:
        summary["asr_dropped"] = m.get("callwatch_asr_dropped_total")
        summary["asr_processed"] = m.get("callwatch_asr_processed_total")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--calls", default="50,100,200", help="comma-separated loads to try")
    p.add_argument("--asr", action="store_true", help="with transcription (the bundled Whisper model)")
    p.add_argument("--seconds", type=float, default=40.0, help="length of the streamed excerpt")
    p.add_argument("--protocol", default="native", choices=("native", "twilio", "audiohook"))
    p.add_argument("--asr-setups", default="1x2", metavar="WxT,...",
                   help="with --asr: Whisper workers x threads each to run every load with, one after the other "
                   "(default 1x2, the service's default); WxT:ISOLATION also sets the transcriber's isolation "
                   "(call, shared), and WxT:ISOLATION~S its window fit (CALLWATCH_ASR_FIT_S; 0 = whole windows)")
    p.add_argument("--rotate", action="store_true",
                   help="copies of the call out of step (replay --rotate) instead of all speaking in lockstep")
    p.add_argument("--call", type=Path, help="stereo call to stream, or a folder with customer.wav and agent.wav "
                   "such as ../shared/data/calls/real/lca-40 (default: a shared labelled call)")
    args = p.parse_args(argv)
    source = call_to_stream(args.call)
    env = bench_env()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        # 30-70 s of the labelled call holds two interruptions by the agent: alerts to time.
        call = excerpt(source, 30.0 if args.call is None else 0.0, args.seconds, Path(tmp) / "call.wav")
        print(f"{'calls':>6s} {'alerts':>7s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'errors':>7s} "
              f"{'server cpu':>10s} {'load gen cpu':>12s} {'loop lag':>9s} {'gen lag':>8s}"
              + ("  transcripts  text p50/p95 ms  dropped" if args.asr else ""), flush=True)
        setups = args.asr_setups.split(",") if args.asr else [""]
        for n, setup in ((int(x), setup) for x in args.calls.split(",") for setup in setups):
            workers, _, rest = setup.partition("x")
            threads, _, isolation = rest.partition(":")
            isolation, _, fit = isolation.partition("~")
            setup_env = {**env, "CALLWATCH_ASR_WORKERS": workers, "CALLWATCH_ASR_THREADS": threads} if setup else env
            if isolation:
                setup_env["CALLWATCH_ASR_ISOLATION"] = isolation
            if fit:
                setup_env["CALLWATCH_ASR_FIT_S"] = fit
            r = run_load(n, call, args.asr, args.protocol, setup_env, args.rotate)
            r["asr_setup"] = setup or None
            runs.append(r)
            if "failed" in r:
                print(f"{n:6d} failed: {r['failed']}", flush=True)
                continue
            lat = {k: float("nan") if v is None else v for k, v in r["latency_ms"].items()}  # nan: no alerts
            line = (f"{n:6d} {r['alerts']:7d} {lat['p50']:8.0f} {lat['p95']:8.0f} {lat['max']:8.0f} "
                    f"{r['errors']:7d} {r['server_cpu_per_wall']:10.2f} {r['generator_cpu_per_wall']:12.2f} "
                    f"{r['loop_lag_max_s']:9.3f} {r.get('generator_lag_max_ms', 0) / 1000:8.3f}")
            if args.asr:
                tl = r.get("transcript_ms") or {}
                line += (f"  {r.get('transcripts', 0):11d}  {tl.get('p50')!s:>6}/{tl.get('p95')!s:<7}"
                         f"  {r.get('asr_dropped')}  Whisper {setup}")
            print(line, flush=True)
    print(json.dumps({"asr": args.asr, "seconds": args.seconds, "rotate": args.rotate, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
