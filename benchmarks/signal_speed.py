"""Signal-path speed: seconds of two-leg call audio the acoustic core processes per CPU second, one core.

    python -m benchmarks.signal_speed [CALL.wav ...] [--chunk-ms 100 20] [--repeat 3]

Pushes audio through the same ``CallMonitor`` the service runs, in chunks of each ``--chunk-ms``: by default
the service's analysis step (100 ms: a call's audio is analysed as each step of it has arrived, however small
the packets it came in) and 20 ms (one packet per push, the most per-push overhead a deployment could see).
Reports the best of ``--repeat`` runs (CPU time, not wall time), side by side with the previous release's
detector and the naive monitor (raw webrtcvad only) as a reference for the cost floor.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from benchmarks.naive import naive_events
from benchmarks.previous_detector import previous_analyzer
from service.analysis.monitor import CallMonitor
from service.ingest.common import STEP_SAMPLES

REPO = Path(__file__).resolve().parent.parent


def run_monitor(c: NDArray[np.int16], a: NDArray[np.int16], chunk: int, previous: bool = False) -> float:
    m = CallMonitor()
    if previous:
        m.analyzer = previous_analyzer()
    t0 = time.process_time()
    for i in range(0, len(c), chunk):
        m.push(c[i: i + chunk], a[i: i + chunk])
        m.take_segments()
    m.finish()
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("calls", nargs="*", type=Path)
    p.add_argument("--chunk-ms", type=int, nargs="+", default=[STEP_SAMPLES // 8, 20])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    data = Path(os.environ.get("CALLWATCH_DATA", REPO.parent / "shared" / "data"))
    calls = args.calls or sorted((data / "calls" / "dev").glob("*.wav"))
    if not calls:
        print(f"no calls found (looked in {data / 'calls' / 'dev'})", file=sys.stderr)
        return 1
    legs = []
    for path in calls:
        x, rate = sf.read(str(path), dtype="int16", always_2d=True)
        legs.append((np.ascontiguousarray(x[:, 0]), np.ascontiguousarray(x[:, 1])))
    audio_s = sum(len(c) for c, _ in legs) / 8000
    naive = min(sum(_timed_naive(c, a) for c, a in legs) for _ in range(args.repeat))
    print(f"{len(legs)} calls, {audio_s:.0f} s of two-leg audio, best of {args.repeat}")
    for ms in args.chunk_ms:
        chunk = 8 * ms
        ours = min(sum(run_monitor(c, a, chunk) for c, a in legs) for _ in range(args.repeat))
        before = min(sum(run_monitor(c, a, chunk, previous=True) for c, a in legs) for _ in range(args.repeat))
        step = " (the service's analysis step)" if chunk == STEP_SAMPLES else ""
        print(f"{ms} ms chunks{step}")
        print(f"  callwatch signal path: {audio_s / ours:8.0f}x real time per core ({1000 * ours / audio_s:.2f} ms CPU "
              f"per second of call)")
        print(f"  previous release     : {audio_s / before:8.0f}x real time per core ({1000 * before / audio_s:.2f} ms "
              f"CPU per second of call)")
    print(f"naive monitor (whole call at once): {audio_s / naive:8.0f}x real time per core")
    return 0


def _timed_naive(c: NDArray[np.int16], a: NDArray[np.int16]) -> float:
    t0 = time.process_time()
    naive_events(c, a)
    return time.process_time() - t0


if __name__ == "__main__":
    sys.exit(main())
