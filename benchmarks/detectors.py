"""Detector accuracy and delay on labelled calls: today's detector, the previous release's and the naive floor,
side by side in one run; flag precision and recall; and the alerts on the labelled real calls.

    python -m benchmarks.detectors [FOLDER ...] [--no-natural] [--make N --seed S [--phone]] [--asr]
                                   [--episodes] [--no-naive] [--no-previous] [--json FILE]
                                   [--echo-db DB] [--crosstalk-db DB] [--leak-delay-ms MS]

Default folders: $CALLWATCH_DATA/calls/dev and dev-phone, and the natural development sets built afresh from
the shared pool (``make_calls.py --natural``: 10 clean calls, seed 11; 6 phone calls with echo, seed 12).
Scoring is the shared scorer's (../shared/tools/score_events.py): the matching rules the project is judged by.
``--echo-db``/``--crosstalk-db`` add leaks to every labelled call before detection (real lines carry them; the
generated calls have at most a faint echo), ``--leak-delay-ms`` that late (default: the echo 40 ms, the
crosstalk 20 ms). Real calls: every ``benchmarks/labels/NAME.json`` whose audio is in
$CALLWATCH_DATA (docs/overlap-labels.md), as recorded and again over simulated phone lines (``phone_line``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from benchmarks.naive import naive_events
from benchmarks.previous_detector import previous_analyzer, previously_flagged
from service.analysis.monitor import CallMonitor
from service.cli.analyze import INTERNAL, analyze, triage

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    return Path(os.environ.get("CALLWATCH_DATA", REPO.parent / "shared" / "data"))


def shared_tool(name: str) -> Path:
    return data_root().parent / "tools" / name


def load_scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_events", shared_tool("score_events.py"))
    if spec is None or spec.loader is None:
        raise SystemExit(f"scorer not found at {shared_tool('score_events.py')}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MONITORS = ("callwatch", "previous", "naive")
NATURAL_SETS = (("devnat", 10, 11, False), ("devnatphone", 6, 12, True))
"""The natural development sets: name, calls, seed, phone line with echo."""
LABELS = REPO / "benchmarks" / "labels"


def run_monitor(name: str, c: NDArray[np.int16], a: NDArray[np.int16], call_id: str,
                transcribe: object | None = None) -> list[dict[str, Any]]:
    """One monitor's events on one call, alerts and ``call_ended`` included (the naive one has no alerts)."""
    if name == "naive":
        return list(naive_events(c, a))
    monitor = CallMonitor()
    if name == "previous":
        monitor.analyzer = previous_analyzer()
    events = triage([e.to_dict() for e in analyze(c, a, monitor, transcribe)], call_id=call_id,
                    asr=transcribe is not None, duration=len(c) / 8000)
    if name == "previous":
        ended = events[-1]["call"]
        ended["flagged"] = previously_flagged(ended)
    return [e for e in events if e["type"] not in INTERNAL]


def add_leaks(c: NDArray[np.int16], a: NDArray[np.int16], echo_db: float | None, crosstalk_db: float | None,
              delay_ms: float | None = None) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """The agent's echo ``echo_db`` down and 40 ms late added to the customer leg, the customer's voice
    ``crosstalk_db`` down and 20 ms late to the agent leg (None: not added; ``delay_ms``: both that late instead).
    The labels stay true: a leak adds no speech."""
    y = _leaked(np.stack([c, a], axis=1).astype(np.float64), echo_db, crosstalk_db, delay_ms, delay_ms)
    out = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
    return out[:, 0].copy(), out[:, 1].copy()


def _leaked(x: NDArray[np.float64], echo_db: float | None, crosstalk_db: float | None,
            echo_delay_ms: float | None = None, crosstalk_delay_ms: float | None = None) -> NDArray[np.float64]:
    """Two legs (customer, agent columns) with the agent's echo added to the customer's, 40 ms late, and the
    customer's voice to the agent's, 20 ms late (None: not added; the delays may be given)."""
    y = x.copy()
    echo_delay = round((40.0 if echo_delay_ms is None else echo_delay_ms) * 8)
    crosstalk_delay = round((20.0 if crosstalk_delay_ms is None else crosstalk_delay_ms) * 8)
    for db, into, source, delay in ((echo_db, 0, 1, echo_delay), (crosstalk_db, 1, 0, crosstalk_delay)):
        if db is not None:
            y[delay:, into] += 10.0 ** (db / 20.0) * x[: len(x) - delay, source]
    return y


def detect(folder: Path, out: dict[str, Path], transcribe: object | None = None,
           leaks: tuple[float | None, float | None] = (None, None), leak_delay_ms: float | None = None) -> float:
    """Writes NAME.jsonl for each monitor in ``out``; returns seconds of call audio."""
    seconds = 0.0
    for wav in sorted(folder.glob("*.wav")):
        x, rate = sf.read(str(wav), dtype="int16", always_2d=True)
        if rate != 8000:
            raise SystemExit(f"{wav}: labelled calls are 8 kHz, this one is {rate} Hz")
        truth = json.loads(wav.with_suffix(".json").read_text())
        ch = truth.get("channels", {"customer": 0, "agent": 1})
        c, a = x[:, ch["customer"]].copy(), x[:, ch["agent"]].copy()
        seconds += len(c) / rate
        if leaks != (None, None):
            c, a = add_leaks(c, a, *leaks, delay_ms=leak_delay_ms)
        for name, path in out.items():
            events = run_monitor(name, c, a, wav.stem, transcribe if name == "callwatch" else None)
            (path / f"{wav.stem}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return seconds


def fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:4.2f}"


def episodes(labels: Path, detections: Path) -> list[str]:
    """One line per labelled raised-voice episode (delay of the first detection inside it, or MISSED) and per
    raised-voice detection outside every episode (FALSE ALARM), by the scorer's matching window."""
    lines = []
    for lf in sorted(labels.glob("*.json")):
        truth = json.loads(lf.read_text())
        dpath = detections / f"{lf.stem}.jsonl"
        dets = [json.loads(x) for x in dpath.read_text().splitlines() if x.strip()] if dpath.exists() else []
        found = [d for d in dets if d.get("type") == "raised_voice"]
        eps = [e for e in truth["events"] if e["type"] == "raised_voice"]
        for ep in eps:
            inside = [d for d in found if d.get("leg") == ep["leg"]
                      and ep["start"] - 2.0 <= float(d["start"]) <= ep["end"] + 1.0]
            when = (f"start {min(float(d['start']) for d in inside) - ep['start']:+5.2f} s, "
                    f"delay {min(float(d['t']) for d in inside) - ep['start']:5.2f} s") if inside else "MISSED"
            lines.append(f"  {lf.stem:36s} {ep['leg']:8s} at {ep['start']:6.1f} s "
                         f"(+{ep.get('loudness_delta_db', 0):4.1f} dB): {when}")
        for d in found:
            if not any(ep["leg"] == d.get("leg") and ep["start"] - 2.0 <= float(d["start"]) <= ep["end"] + 1.0
                       for ep in eps):
                lines.append(f"  {lf.stem:36s} {d.get('leg', '?'):8s} at {float(d['start']):6.1f} s: FALSE ALARM "
                             f"(+{d.get('loudness_db', 0):.1f} dB, {d.get('pitch_st', 0):+.1f} st)")
    return lines


SNR_BANDS = ((-99.0, 6.0), (6.0, 12.0), (12.0, 99.0))
"""Bands of the quieter voice's level over the line noise (dB) for interruption recall."""


def _frame_db(x: NDArray[np.int16]) -> NDArray[np.float64]:
    n = len(x) // 160
    f = x[: n * 160].astype(np.float64).reshape(n, 160)
    out: NDArray[np.float64] = 10 * np.log10((f * f).mean(axis=1) + 1e-3)
    return out


HEARD_DB = 6.0
"""A frame counts as heard when it stands this far over its leg's line noise (``audibility``)."""
HEARD_BANDS = ((-99.0, 0.02), (0.02, 0.5), (0.5, 99.0))
"""Seconds the interrupted voice is still heard after the interrupter is first heard."""


def audibility(wav: Path, truth: dict[str, Any]) -> list[tuple[dict[str, Any], float, float]]:
    """Each labelled interruption with two measures of what can be heard of it at all.

    The SNR: how far the quieter of its two voices stood over its leg's line noise (the louder quarter of that
    utterance's frames, against the median of the leg's frames where nobody speaks, by the labels). On a phone
    line a calm voice may sit a few dB over the noise, where no frame of it stands out.

    The heard overlap: from the interrupter's first frame ``HEARD_DB`` over the noise, how long the interrupted
    voice is still heard (its last such frame before the labelled cut). A label's start and overlap are where
    the generator placed the clips; a clip may open with near-silence (a loose ``speech_start`` in the pool), so
    an interruption labelled with a second of overlap can have none that anyone hears."""
    x, _ = sf.read(str(wav), dtype="int16", always_2d=True)
    ch = truth.get("channels", {"customer": 0, "agent": 1})
    levels = {leg: _frame_db(x[:, k]) for leg, k in ch.items()}
    quiet = np.ones(min(len(v) for v in levels.values()), dtype=bool)
    for u in truth["utterances"]:
        quiet[max(0, int(u["start"] * 50) - 5): int(u["end"] * 50) + 5] = False
    noise = {leg: float(np.median(v[: len(quiet)][quiet])) if quiet.any() else -100.0 for leg, v in levels.items()}

    def snr(leg: str, at: float, starting: bool) -> float:
        near = [u for u in truth["utterances"] if u["leg"] == leg and (
            abs(u["start"] - at) < 0.3 if starting else u["start"] < at < u["end"] + 0.3)]
        if not near:
            return 99.0
        u = near[0]
        frames = levels[leg][int(u["start"] * 50): max(int(u["end"] * 50), int(u["start"] * 50) + 1)]
        return float(np.percentile(frames, 75)) - noise[leg] if len(frames) else 99.0

    def heard(e: dict[str, Any]) -> float:
        by, of = levels[e["by"]], levels[e["of"]]
        start, cut = int(e["start"] * 50), int((e["start"] + e["overlap"]) * 50) + 10
        onset = np.flatnonzero(by[start: start + 100] > noise[e["by"]] + HEARD_DB)
        if not len(onset):
            return -99.0
        first = start + int(onset[0])
        last = np.flatnonzero(of[max(first - 50, 0): cut] > noise[e["of"]] + HEARD_DB)
        return (max(first - 50, 0) + int(last[-1]) + 1 - first) / 50 if len(last) else -99.0

    return [(e, min(snr(e["of"], e["start"], False), snr(e["by"], e["start"], True)), heard(e))
            for e in truth["events"] if e["type"] == "interruption"]


def labelled_audibility(labels: Path) -> dict[str, list[tuple[dict[str, Any], float, float]]]:
    """``audibility`` of every labelled call in the folder, by call name."""
    return {wav.stem: audibility(wav, json.loads(wav.with_suffix(".json").read_text()))
            for wav in sorted(labels.glob("*.wav"))}


def recall_by(measured: dict[str, list[tuple[dict[str, Any], float, float]]], which: int,
              bands: tuple[tuple[float, float], ...], detections: Path) -> list[tuple[int, int]]:
    """(found, labelled) interruptions per band of measure ``which`` (1: SNR, 2: heard overlap), matched as the
    scorer does (same speaker, onset within 1 s, one detection per label)."""
    counts = [[0, 0] for _ in bands]
    for name, labelled in measured.items():
        dpath = detections / f"{name}.jsonl"
        dets = [json.loads(x) for x in dpath.read_text().splitlines() if x.strip()] if dpath.exists() else []
        found = [d for d in dets if d.get("type") == "interruption"]
        used: set[int] = set()
        for row in labelled:
            label, level = row[0], row[1] if which == 1 else row[2]
            hit = next((k for k, d in enumerate(found) if k not in used and d.get("by") == label["by"]
                        and abs(float(d["start"]) - label["start"]) <= 1.0), None)
            if hit is not None:
                used.add(hit)
            band = next(k for k, (lo, hi) in enumerate(bands) if lo <= level < hi)
            counts[band][0] += hit is not None
            counts[band][1] += 1
    return [(a, b) for a, b in counts]


def band_line(label: str, what: str, names: tuple[str, ...], counts: list[tuple[int, int]]) -> str:
    parts = [f"{name} {a}/{b}" + (f" ({a / b:.2f})" if b else "") for name, (a, b) in zip(names, counts, strict=True)]
    return f"{label:9s} interruption recall by {what}: " + ", ".join(parts)


def snr_line(label: str, counts: list[tuple[int, int]]) -> str:
    return band_line(label, "how far the quieter voice stood over the line noise",
                     ("under 6 dB", "6-12 dB", "12 dB and more"), counts)


def heard_line(label: str, counts: list[tuple[int, int]]) -> str:
    return band_line(label, "how long the interrupted voice is heard over the interrupter",
                     ("not at all", "under 0.5 s", "0.5 s and more"), counts)


def flags(labels: Path, detections: Path) -> dict[str, Any]:
    """Flag precision and recall: a labelled call is a positive when a voice was raised in it (an escalation or
    agent-raises-voice scenario, or any labelled raised-voice episode); a call is flagged when the monitor's
    ``call_ended`` says so. Also the agent's interruption alerts per hour of the calls with none labelled."""
    tp = fp = fn = tn = 0
    calm_alerts, calm_hours = 0, 0.0
    missed: list[str] = []
    wrong: list[str] = []
    for lf in sorted(labels.glob("*.json")):
        truth = json.loads(lf.read_text())
        positive = any(e["type"] == "raised_voice" for e in truth["events"])
        dets = [json.loads(x) for x in (detections / f"{lf.stem}.jsonl").read_text().splitlines() if x.strip()]
        ended = [d for d in dets if d.get("type") == "call_ended"]
        flagged = bool(ended and ended[-1]["call"]["flagged"])
        tp += positive and flagged
        fp += flagged and not positive
        fn += positive and not flagged
        tn += not (positive or flagged)
        (missed if positive and not flagged else wrong if flagged and not positive else []).append(lf.stem)
        if not any(e["type"] == "interruption" and e["by"] == "agent" for e in truth["events"]):
            calm_hours += truth["duration"] / 3600
            calm_alerts += sum(d.get("type") == "alert" and d.get("rule") == "interruption" for d in dets)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0, "missed": missed, "wrong": wrong,
            "false_interruption_alerts_per_hour": calm_alerts / calm_hours if calm_hours else None}


def report(name: str, scores: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(scores.values()))
    lines = [f"== {name}: {first['calls']} calls, {first['hours'] * 60:.1f} min",
             f"{'':14s} {'monitor':9s} {'P':>5s} {'R':>5s} {'F1':>5s} {'tp':>4s} {'fp':>4s} {'fn':>4s} "
             f"{'d50':>5s} {'d95':>5s}"]
    for key in ("interruption", "raised_voice", "dead_air"):
        for label, s in scores.items():
            k = s[key]
            lines.append(f"{key:14s} {label:9s} {k['precision']:5.2f} {k['recall']:5.2f} {k['f1']:5.2f} "
                         f"{k['tp']:4d} {k['fp']:4d} {k['fn']:4d} {fmt(k['delay_p50']):>5s} {fmt(k['delay_p95']):>5s}")
    for label, s in scores.items():
        rv = s["raised_voice"]
        natural = (f"; natural overlaps flagged {s['overlap_false_alarms']}/{s['overlaps']} "
                   f"({s['overlap_false_alarm_rate']:.2f})" if s.get("overlaps") else "")
        lines.append(f"{label:9s} backchannels flagged {s['backchannel_false_alarms']}/{s['backchannels']} "
                     f"({s['backchannel_false_alarm_rate']:.2f}){natural}; raised voice: clear-episode recall "
                     f"{rv['clear_recall']:.2f}, false alarms/hour {rv['false_alarms_per_hour']:.1f}")
    return lines


def flag_line(label: str, f: dict[str, Any], how: str) -> str:
    return (f"{label:9s} flags ({how}): P {f['precision']:.2f} R {f['recall']:.2f} "
            f"(tp {f['tp']} fp {f['fp']} fn {f['fn']} tn {f['tn']})"
            + (f", missed {' '.join(f['missed'])}" if f["missed"] else "")
            + (f", wrongly flagged {' '.join(f['wrong'])}" if f["wrong"] else ""))


def real_calls(transcribe: object | None = None) -> list[tuple[str, dict[str, NDArray[np.int16]], dict[str, Any]]]:
    """The labelled real calls whose audio is at hand: (name, legs, labels)."""
    out = []
    for lf in sorted(LABELS.glob("*.json")):
        labels = json.loads(lf.read_text())
        paths = {leg: data_root() / rel for leg, rel in labels["audio"].items()}
        if not all(p.exists() for p in paths.values()):
            print(f"skipping the real call {lf.stem}: its audio is not in {data_root()}", file=sys.stderr)
            continue
        legs = {}
        for leg, path in paths.items():
            x, rate = sf.read(str(path), dtype="int16", always_2d=True)
            if rate != 8000:
                raise SystemExit(f"{path}: {rate} Hz, expected 8 kHz")
            legs[leg] = x[:, 0].copy()
        n = max(len(v) for v in legs.values())
        out.append((lf.stem, {k: np.pad(v, (0, n - len(v))) for k, v in legs.items()}, labels))
    return out


PHONE_NOISE_DB = -48.0
"""Line noise for the real calls' phone-line run: the middle of make_calls.py's ``--phone`` range."""


LINES = (("", -30.0, None), (", echo 15 dB down", -15.0, None), (", crosstalk 20 dB down", -30.0, -20.0))
"""The phone lines the real calls are run over again: name, the agent's echo on the customer leg, the customer's
voice on the agent leg (dB)."""


def phone_line(legs: dict[str, NDArray[np.int16]], noise_db: float = PHONE_NOISE_DB, echo_db: float = -30.0,
               crosstalk_db: float | None = None, seed: int = 0, echo_delay_ms: float | None = None,
               crosstalk_delay_ms: float | None = None) -> dict[str, NDArray[np.int16]]:
    """Both legs as a phone line would carry them, the way make_calls.py's ``--phone --echo`` degrades its calls:
    white line noise, the agent's echo ``echo_db`` down and 40 ms late on the customer leg, a soft limiter, and a
    G.711 mu-law round trip; with ``crosstalk_db``, the customer's voice that far down and 20 ms late on the
    agent leg too (a headset's speaker heard by its microphone); ``echo_delay_ms``/``crosstalk_delay_ms``: later
    leaks (a long echo path, a softphone's crosstalk). The held-back real calls are telephone calls: the real
    call here is clean."""
    rng = np.random.default_rng(seed)
    x = np.stack([legs["customer"], legs["agent"]], axis=1).astype(np.float64) / 32768.0
    x += rng.normal(0.0, 10.0 ** (noise_db / 20.0), x.shape)
    x = np.tanh(_leaked(x, echo_db, crosstalk_db, echo_delay_ms, crosstalk_delay_ms))
    mu = 255.0
    y = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127.0) / 127.0
    x = np.sign(y) * ((1.0 + mu) ** np.abs(y) - 1.0) / mu
    out = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
    return {"customer": out[:, 0].copy(), "agent": out[:, 1].copy()}


def score_real(events: list[dict[str, Any]], labels: dict[str, Any], duration: float) -> dict[str, Any]:
    """Interruptions by the label of the moment each falls on (same speaker, within 1 s); agent-interruption
    alerts the labels call wrong, per 5 minutes; every alert per hour, by rule."""
    moments = labels["moments"]

    def label_of(ev: dict[str, Any]) -> str:
        near = [m for m in moments if m["by"] == ev.get("by") and abs(m["start"] - float(ev["start"])) <= 1.0]
        return min(near, key=lambda m: abs(m["start"] - float(ev["start"])))["label"] if near else "unlabelled"

    by_label: dict[str, int] = {}
    for ev in events:
        if ev["type"] == "interruption":
            key = f"{ev['by']}:{label_of(ev)}"
            by_label[key] = by_label.get(key, 0) + 1
    alerts = [e for e in events if e["type"] == "alert"]
    retracted = {e["id"] for e in events if e["type"] == "alert_retracted"}
    agent = [a for a in alerts if a["rule"] == "interruption" and a["id"] not in retracted]
    wrong = [a for a in agent if label_of(a["cause"][0]) not in ("interruption", "arguable")]
    rules: dict[str, int] = {}
    for a in alerts:
        if a["id"] not in retracted:
            rules[a["rule"]] = rules.get(a["rule"], 0) + 1
    ended = [e for e in events if e["type"] == "call_ended"]
    return {"interruptions": by_label, "agent_alerts": len(agent), "wrong_agent_alerts": len(wrong),
            "wrong_agent_alerts_per_5min": len(wrong) / (duration / 300.0),
            "alerts_per_hour": {k: v / (duration / 3600.0) for k, v in sorted(rules.items())},
            "flagged": bool(ended and ended[-1]["call"]["flagged"])}


def real_lines(name: str, duration: float, results: dict[str, dict[str, Any]], line: str = "") -> list[str]:
    lines = [f"== real call {name}{line}: {duration / 60:.1f} min, labelled by docs/overlap-labels.md"]
    for label, r in results.items():
        found = ", ".join(f"{k} {v}" for k, v in sorted(r["interruptions"].items())) or "none"
        per_hour = ", ".join(f"{k} {v:.0f}" for k, v in r["alerts_per_hour"].items()) or "none"
        lines.append(f"{label:9s} interruptions by label: {found}")
        if "agent_alerts" in r and label != "naive":
            lines.append(f"{label:9s} agent interruption alerts {r['agent_alerts']}, wrong by the labels "
                         f"{r['wrong_agent_alerts']} ({r['wrong_agent_alerts_per_5min']:.1f} per 5 min); "
                         f"flagged {r['flagged']}; alerts per hour: {per_hour}")
    return lines


def make_set(tmp: Path, name: str, calls: int, seed: int, phone: bool, natural: bool) -> Path:
    out = tmp / name
    cmd = [sys.executable, str(shared_tool("make_calls.py")), str(data_root() / "pools" / "dev"), str(out),
           "--calls", str(calls), "--seed", str(seed), "--prefix", name]
    cmd += ["--phone", "--echo"] if phone else []
    cmd += ["--natural"] if natural else []
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("folders", nargs="*", type=Path)
    p.add_argument("--no-natural", action="store_true", help="skip the natural sets built from the shared pool")
    p.add_argument("--make", type=int, default=0, help="also build N fresh labelled calls with make_calls.py")
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--phone", action="store_true", help="fresh calls with line noise, mu-law and echo")
    p.add_argument("--natural", action="store_true", help="fresh calls with natural overlaps")
    p.add_argument("--asr", action="store_true",
                   help="today's detector with transcription too (the bundled model): flags with ASR, retractions")
    p.add_argument("--json", type=Path, help="write all scores here as JSON")
    p.add_argument("--episodes", action="store_true",
                   help="also list every raised-voice episode with its detection delay, and every false alarm")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline (faster)")
    p.add_argument("--no-previous", action="store_true", help="skip the previous release's detector (faster)")
    p.add_argument("--echo-db", type=float, help="add the agent's echo this far down (dB) to every call's customer leg")
    p.add_argument("--crosstalk-db", type=float,
                   help="add the customer's voice this far down (dB) to every call's agent leg")
    p.add_argument("--leak-delay-ms", type=float,
                   help="the added leaks this late (default: the echo 40 ms, the crosstalk 20 ms)")
    args = p.parse_args(argv)
    scorer = load_scorer()
    monitors = [m for m in MONITORS if not (m == "naive" and args.no_naive or m == "previous" and args.no_previous)]
    transcribe = None
    if args.asr:
        from service.analysis.offline_asr import build_offline_asr

        transcribe = build_offline_asr(None, None)
    folders = list(args.folders) or [data_root() / "calls" / "dev", data_root() / "calls" / "dev-phone"]
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.folders and not args.no_natural:
            folders += [make_set(tmp / "sets", name, n, seed, phone, True) for name, n, seed, phone in NATURAL_SETS]
        if args.make:
            folders.append(make_set(tmp / "sets", f"made-seed{args.seed}", args.make, args.seed, args.phone,
                                    args.natural))
        for folder in folders:
            if not folder.is_dir():
                print(f"skipping {folder}: not a folder", file=sys.stderr)
                continue
            out = {m: tmp / "out" / folder.name / m for m in monitors}
            for path in out.values():
                path.mkdir(parents=True)
            detect(folder, out, transcribe, (args.echo_db, args.crosstalk_db), args.leak_delay_ms)
            scores = {m: scorer.score(folder, path) for m, path in out.items()}
            flagging = {m: flags(folder, path) for m, path in out.items() if m != "naive"}
            heard = labelled_audibility(folder)
            by_snr = {m: recall_by(heard, 1, SNR_BANDS, path) for m, path in out.items()}
            by_heard = {m: recall_by(heard, 2, HEARD_BANDS, path) for m, path in out.items()}
            summary[folder.name] = {"scores": scores, "flags": flagging, "interruption_recall_by_snr": by_snr,
                                    "interruption_recall_by_heard_overlap": by_heard}
            print("\n".join(report(folder.name, scores)), flush=True)
            for m, counts in by_snr.items():
                print(snr_line(m, counts), flush=True)
            for m, counts in by_heard.items():
                print(heard_line(m, counts), flush=True)
            for m, f in flagging.items():
                how = "with ASR" if transcribe is not None and m == "callwatch" else "signals only"
                print(flag_line(m, f, how), flush=True)
            if args.episodes:
                print("\n".join(episodes(folder, out["callwatch"])), flush=True)
    for name, legs, labels in real_calls():
        duration = len(legs["customer"]) / 8000
        results = {m: score_real(run_monitor(m, legs["customer"], legs["agent"], name), labels, duration)
                   for m in monitors}
        if transcribe is not None:
            results["with ASR"] = score_real(run_monitor("callwatch", legs["customer"], legs["agent"], name,
                                                         transcribe), labels, duration)
        summary[f"real:{name}"] = results
        print("\n".join(real_lines(name, duration, results)), flush=True)
        for line, echo_db, crosstalk_db in LINES:
            phone = phone_line(legs, echo_db=echo_db, crosstalk_db=crosstalk_db)
            results = {m: score_real(run_monitor(m, phone["customer"], phone["agent"], name), labels, duration)
                       for m in monitors}
            summary[f"real:{name}:phone{line}"] = results
            print("\n".join(real_lines(name, duration, results, f" over a phone line ({PHONE_NOISE_DB:.0f} dBFS "
                                        f"noise, mu-law{line})")), flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
