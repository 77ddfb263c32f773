"""The naive monitor, the floor any detector must beat: raw webrtcvad overlap, level jumps, joint silence.

Kept deliberately simple, so the detectors' gains over it are visible in the same run on the same data.
"""

from __future__ import annotations

import numpy as np
import webrtcvad
from numpy.typing import NDArray

from audio.frames import FRAME, frame_levels_db

RATE = 8000


def naive_events(customer: NDArray[np.int16], agent: NDArray[np.int16]) -> list[dict[str, object]]:
    n = min(len(customer), len(agent)) // FRAME
    legs = {"customer": customer[: n * FRAME].reshape(n, FRAME), "agent": agent[: n * FRAME].reshape(n, FRAME)}
    vad = webrtcvad.Vad(2)
    active = {leg: np.array([vad.is_speech(f.astype("<i2").tobytes(), RATE) for f in x]) for leg, x in legs.items()}
    out: list[dict[str, object]] = []
    sec = FRAME / RATE
    # Interruption: a leg's VAD onset while the other leg's VAD is on.
    for by, of in (("agent", "customer"), ("customer", "agent")):
        onsets = np.flatnonzero(active[by][1:] & ~active[by][:-1]) + 1
        for i in onsets.tolist():
            if active[of][i]:
                out.append({"type": "interruption", "by": by, "of": of, "start": i * sec, "t": (i + 1) * sec})
    # Raised voice: the last 3 s of the leg's active frames 6 dB over the running median of all before.
    for leg, x in legs.items():
        levels = frame_levels_db(x)
        history: list[float] = []
        recent: list[float] = []
        quiet_until = -1
        for i, (lv, act) in enumerate(zip(levels.tolist(), active[leg].tolist(), strict=True)):
            if not act:
                continue
            recent = [*recent[-149:], float(lv)]
            if len(history) > 250 and i > quiet_until and len(recent) == 150 \
                    and float(np.mean(recent)) > float(np.median(history)) + 6.0:
                out.append({"type": "raised_voice", "leg": leg, "start": (i - 149) * sec, "t": (i + 1) * sec})
                quiet_until = i + 500  # one report per 10 s
            history.append(float(lv))
    # Dead air: 4 s with neither VAD on.
    silent = 0
    for i in range(n):
        silent = 0 if active["customer"][i] or active["agent"][i] else silent + 1
        if silent == 200:
            out.append({"type": "dead_air", "start": (i - 199) * sec, "t": (i + 1) * sec})
    return sorted(out, key=lambda e: float(e["t"]))  # type: ignore[arg-type]
