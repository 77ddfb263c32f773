"""Alerts on the labelled real calls under the conditions real lines add: leaks, loss, gain, clipping, hum.

    python -m benchmarks.robustness [--json FILE]

Each labelled real call (``benchmarks/labels``, audio from $CALLWATCH_DATA) is run as recorded and through each
condition in ``CONDITIONS`` (deterministic: fixed seeds), by today's detector and the previous release's, signals
only (the previous release's detector shares today's front end: its VAD, leak gates and pitch). A calm call
should give the same answer under all of them: no interruption the labels call wrong, no flag. Printed per
condition: the interruptions reported (by the labels of the moments they fall on), the agent interruption
alerts the labels call wrong (per 5 minutes), whether the call is flagged, every alert per hour.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfilt

from benchmarks.detectors import phone_line, real_calls, run_monitor, score_real

Legs = dict[str, NDArray[np.int16]]
F64 = NDArray[np.float64]
RATE = 8000


def _as_pcm(customer: F64, agent: F64) -> Legs:
    return {leg: np.clip(np.rint(x), -32768, 32767).astype(np.int16) for leg, x in (("customer", customer),
                                                                                    ("agent", agent))}


def _floats(legs: Legs) -> tuple[F64, F64]:
    return legs["customer"].astype(np.float64), legs["agent"].astype(np.float64)


def packets_lost(share: float) -> Callable[[Legs], Legs]:
    """20 ms packets lost at random and played as silence (no concealment), on each leg apart."""
    def apply(legs: Legs) -> Legs:
        rng = np.random.default_rng(11)
        out = []
        for x in _floats(legs):
            n = len(x) // 160 * 160
            frames = x[:n].reshape(-1, 160)
            frames[rng.random(len(frames)) < share] = 0.0
            out.append(x)
        return _as_pcm(out[0], out[1])
    return apply


def gain_swings(db: float) -> Callable[[Legs], Legs]:
    """A slow automatic gain control: each leg's gain swinging +-``db`` (periods of 7 and 11 s)."""
    def apply(legs: Legs) -> Legs:
        c, a = _floats(legs)
        t = np.arange(len(c)) / RATE
        swing_c, swing_a = np.sin(2 * np.pi * t / 7), np.sin(2 * np.pi * t / 11 + 1)
        return _as_pcm(c * 10 ** (db * swing_c / 20), a * 10 ** (db * swing_a / 20))
    return apply


def gain(db: float) -> Callable[[Legs], Legs]:
    """Both legs ``db`` louder (clipped at full scale) or quieter."""
    def apply(legs: Legs) -> Legs:
        c, a = _floats(legs)
        return _as_pcm(c * 10 ** (db / 20), a * 10 ** (db / 20))
    return apply


def hum(db: float) -> Callable[[Legs], Legs]:
    """Mains hum: 60 Hz on the customer leg, 50 Hz on the agent's, ``db`` dBFS."""
    def apply(legs: Legs) -> Legs:
        c, a = _floats(legs)
        t = np.arange(len(c)) / RATE
        amp = 32768 * np.sqrt(2) * 10 ** (db / 20)
        return _as_pcm(c + amp * np.sin(2 * np.pi * 60 * t), a + amp * np.sin(2 * np.pi * 50 * t))
    return apply


def telephone_band(legs: Legs) -> Legs:
    """300-3400 Hz, as the public network carries a call, then the phone line."""
    sos = butter(6, [300, 3400], "bandpass", fs=RATE, output="sos")
    c, a = _floats(legs)
    return phone_line(_as_pcm(sosfilt(sos, c), sosfilt(sos, a)))


CONDITIONS: tuple[tuple[str, Callable[[Legs], Legs]], ...] = (
    ("as recorded", lambda legs: legs),
    ("phone line (-48 dBFS noise, mu-law, echo 30 dB down)", phone_line),
    ("phone line, 300-3400 Hz", telephone_band),
    ("phone line, echo 12 dB down", lambda legs: phone_line(legs, echo_db=-12.0)),
    ("phone line, echo 20 dB down", lambda legs: phone_line(legs, echo_db=-20.0)),
    ("phone line, crosstalk 20 dB down", lambda legs: phone_line(legs, crosstalk_db=-20.0)),
    ("phone line, echo and crosstalk 20 dB down", lambda legs: phone_line(legs, echo_db=-20.0, crosstalk_db=-20.0)),
    # A line echo over a mobile or VoIP path, and a softphone's headset crosstalk (after the client's jitter
    # buffer, playout and capture), come back far later than a domestic line's.
    ("phone line, echo 15 dB down, 250 ms late", lambda legs: phone_line(legs, echo_db=-15.0, echo_delay_ms=250.0)),
    ("phone line, crosstalk 20 dB down, 200 ms late",
     lambda legs: phone_line(legs, crosstalk_db=-20.0, crosstalk_delay_ms=200.0)),
    ("3 % of packets lost", packets_lost(0.03)),
    ("gain swinging +-8 dB", gain_swings(8.0)),
    ("12 dB louder, clipped", gain(12.0)),
    ("25 dB quieter", gain(-25.0)),
    ("mains hum at -40 dBFS", hum(-40.0)),
    ("mains hum at -40 dBFS, phone line", lambda legs: phone_line(hum(-40.0)(legs))),
)


def summary(r: dict[str, Any]) -> str:
    found = ", ".join(f"{k} {v}" for k, v in sorted(r["interruptions"].items())) or "none"
    per_hour = ", ".join(f"{k} {v:.0f}" for k, v in r["alerts_per_hour"].items()) or "none"
    return (f"interruptions: {found}; wrong agent alerts {r['wrong_agent_alerts']} "
            f"({r['wrong_agent_alerts_per_5min']:.1f} per 5 min); flagged {r['flagged']}; alerts per hour: {per_hour}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--json", type=Path, help="write all results here as JSON")
    args = p.parse_args(argv)
    out: dict[str, Any] = {}
    calls = real_calls()
    if not calls:
        print("no labelled real call has its audio here (set CALLWATCH_DATA)", file=sys.stderr)
        return 1
    for name, legs, labels in calls:
        duration = len(legs["customer"]) / RATE
        print(f"== real call {name}: {duration / 60:.1f} min", flush=True)
        for condition, apply in CONDITIONS:
            x = apply(legs)
            results = {m: score_real(run_monitor(m, x["customer"], x["agent"], name), labels, duration)
                       for m in ("callwatch", "previous")}
            out[f"{name}: {condition}"] = results
            print(f"-- {condition}", flush=True)
            for m, r in results.items():
                print(f"   {m:9s} {summary(r)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
