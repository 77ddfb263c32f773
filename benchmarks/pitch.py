"""Pitch tracking on telephone speech: our YIN against librosa's trackers, one run, same frames.

    python -m benchmarks.pitch [--limit N]

Reference: librosa.pyin on the clean 16 kHz RAVDESS recordings of the shared pool (all actors and styles,
neutral to shouting). Test condition: the same speech as a phone line delivers it: 8 kHz, 300-3400 Hz,
G.711 mu-law, line noise at -50 dBFS. Reported per tracker: gross pitch error (frames voiced in the
reference and by the tracker, more than 20 % off), voicing recall (reference-voiced frames the tracker
calls voiced) and CPU milliseconds per second of audio.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import scipy.signal
import soundfile as sf
from numpy.typing import NDArray

from audio.pcm import mulaw_decode, mulaw_encode, resample, to_int16
from audio.pitch import Yin
from audio.settings import PitchSettings

REPO = Path(__file__).resolve().parent.parent
HOP = 160  # 20 ms at 8 kHz: the analysis frames of the service
F = NDArray[np.float64]


def telephone(x16k: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.int16]:
    pcm = resample(to_int16(x16k), 16000, 8000)
    sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos")
    y = scipy.signal.sosfilt(sos, pcm.astype(np.float64))
    y += rng.normal(0, 10 ** (-50 / 20) * 32768, len(y))
    return mulaw_decode(mulaw_encode(np.clip(y, -32768, 32767).astype(np.int16)))


def ours(pcm: NDArray[np.int16]) -> F:
    yin = Yin(PitchSettings(), 8000)
    x = np.concatenate([np.zeros(yin.span), pcm.astype(np.float64)])
    n = len(pcm) // HOP
    ends = [(i + 1) * HOP + yin.span for i in range(n)]
    f0, _ = yin.estimate(np.stack([x[e - yin.span: e] for e in ends]))
    return f0


def librosa_yin(pcm: NDArray[np.int16]) -> F:
    f0 = librosa.yin(pcm.astype(np.float32) / 32768, fmin=60, fmax=400, sr=8000, frame_length=512, hop_length=HOP)
    return np.asarray(f0, dtype=np.float64)  # yin has no voicing decision: every frame gets a pitch


def librosa_pyin(pcm: NDArray[np.int16]) -> F:
    f0, voiced, _ = librosa.pyin(pcm.astype(np.float32) / 32768, fmin=60, fmax=400, sr=8000, frame_length=512,
                                 hop_length=HOP)
    return np.where(voiced, f0, np.nan).astype(np.float64)


def reference(x16k: NDArray[np.float32]) -> F:
    f0, voiced, _ = librosa.pyin(x16k, fmin=60, fmax=500, sr=16000, frame_length=1024, hop_length=2 * HOP)
    return np.where(voiced, f0, np.nan).astype(np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--limit", type=int, default=60, help="clips to use (spread over actors and styles)")
    args = p.parse_args(argv)
    pool = Path(os.environ.get("CALLWATCH_DATA", REPO.parent / "shared" / "data")) / "pools" / "dev"
    if not (pool / "pool.tsv").exists():
        print(f"no pool at {pool}", file=sys.stderr)
        return 1
    with open(pool / "pool.tsv", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if r["voice"].startswith("ravdess") and r["role"] == "customer"]
    rows = rows[:: max(1, len(rows) // args.limit)][: args.limit]
    rng = np.random.default_rng(0)
    trackers = {"callwatch yin": ours, "librosa.yin": librosa_yin, "librosa.pyin": librosa_pyin}
    stats = {name: {"gross": 0, "both": 0, "ref_voiced": 0, "found": 0, "cpu": 0.0} for name in trackers}
    seconds = 0.0
    for row in rows:
        x, rate = sf.read(str(pool / row["path"]), dtype="float32")
        x = x[int(float(row["speech_start"]) * rate): int(float(row["speech_end"]) * rate)]
        ref = reference(x)
        pcm = telephone(x, rng)
        seconds += len(pcm) / 8000
        for name, track in trackers.items():
            t0 = time.process_time()
            est = track(pcm)
            stats[name]["cpu"] += time.process_time() - t0
            n = min(len(ref), len(est))
            r, e = ref[:n], est[:n]
            rv = ~np.isnan(r)
            both = rv & ~np.isnan(e)
            s = stats[name]
            s["ref_voiced"] += int(rv.sum())
            s["found"] += int(both.sum())
            s["both"] += int(both.sum())
            s["gross"] += int((np.abs(e[both] / r[both] - 1) > 0.2).sum())
    print(f"{len(rows)} RAVDESS clips, {seconds:.0f} s, telephone condition "
          "(8 kHz, 300-3400 Hz, mu-law, -50 dBFS noise)")
    print(f"{'tracker':15s} {'gross error':>11s} {'voicing recall':>14s} {'CPU ms/s':>9s}")
    for name, s in stats.items():
        gross = s["gross"] / max(s["both"], 1)
        recall = s["found"] / max(s["ref_voiced"], 1)
        print(f"{name:15s} {100 * gross:10.1f}% {100 * recall:13.1f}% {1000 * s['cpu'] / seconds:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
