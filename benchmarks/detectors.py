"""Detector accuracy and delay on labelled calls, side by side with the naive floor, in one run.

    python -m benchmarks.detectors [FOLDER ...] [--make N --seed S [--phone]] [--episodes] [--no-naive]

Default folders: $CALLWATCH_DATA/calls/dev and dev-phone. Scoring is the shared scorer's
(../shared/tools/score_events.py): same matching rules as the project is judged by.
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

import soundfile as sf

from benchmarks.naive import naive_events
from service.analyze_cmd import INTERNAL, analyze, triage
from service.monitor import CallMonitor

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


def detect(folder: Path, out_ours: Path, out_naive: Path, naive: bool = True) -> float:
    """Writes NAME.jsonl for both monitors (ours only without ``naive``); returns seconds of call audio."""
    seconds = 0.0
    for wav in sorted(folder.glob("*.wav")):
        x, rate = sf.read(str(wav), dtype="int16", always_2d=True)
        if rate != 8000:
            raise SystemExit(f"{wav}: labelled calls are 8 kHz, this one is {rate} Hz")
        truth = json.loads(wav.with_suffix(".json").read_text())
        ch = truth.get("channels", {"customer": 0, "agent": 1})
        c, a = x[:, ch["customer"]].copy(), x[:, ch["agent"]].copy()
        seconds += len(c) / rate
        events = triage([e.to_dict() for e in analyze(c, a, CallMonitor())], call_id=wav.stem, asr=False,
                        duration=len(c) / rate)
        (out_ours / f"{wav.stem}.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in events if e["type"] not in INTERNAL))
        if naive:
            (out_naive / f"{wav.stem}.jsonl").write_text(
                "".join(json.dumps(e) + "\n" for e in naive_events(c, a)))
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


def report(name: str, ours: dict, naive: dict | None) -> list[str]:  # type: ignore[type-arg]
    lines = [f"== {name}: {ours['calls']} calls, {ours['hours'] * 60:.1f} min",
             f"{'':14s} {'monitor':8s} {'P':>5s} {'R':>5s} {'F1':>5s} {'tp':>4s} {'fp':>4s} {'fn':>4s} "
             f"{'d50':>5s} {'d95':>5s}"]
    monitors = (("callwatch", ours), ("naive", naive)) if naive else (("callwatch", ours),)
    for key in ("interruption", "raised_voice", "dead_air"):
        for label, s in monitors:
            k = s[key]
            lines.append(f"{key:14s} {label:8s} {k['precision']:5.2f} {k['recall']:5.2f} {k['f1']:5.2f} "
                         f"{k['tp']:4d} {k['fp']:4d} {k['fn']:4d} {fmt(k['delay_p50']):>5s} {fmt(k['delay_p95']):>5s}")
    for label, s in monitors:
        if s.get("overlaps"):
            lines.append(f"{label:9s} natural overlaps flagged {s['overlap_false_alarms']}/{s['overlaps']} "
                         f"({s['overlap_false_alarm_rate']:.2f})")
        rv = s["raised_voice"]
        lines.append(f"{label:9s} backchannels flagged {s['backchannel_false_alarms']}/{s['backchannels']} "
                     f"({s['backchannel_false_alarm_rate']:.2f}); raised voice: clear-episode recall "
                     f"{rv['clear_recall']:.2f}, false alarms/hour {rv['false_alarms_per_hour']:.1f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("folders", nargs="*", type=Path)
    p.add_argument("--make", type=int, default=0, help="also build N fresh labelled calls with make_calls.py")
    p.add_argument("--seed", type=int, default=101)
    p.add_argument("--phone", action="store_true", help="fresh calls with line noise, mu-law and echo")
    p.add_argument("--json", type=Path, help="write all scores here as JSON")
    p.add_argument("--episodes", action="store_true",
                   help="also list every raised-voice episode with its detection delay, and every false alarm")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline (faster)")
    args = p.parse_args(argv)
    scorer = load_scorer()
    folders = list(args.folders) or [data_root() / "calls" / "dev", data_root() / "calls" / "dev-phone"]
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.make:
            made = Path(tmp) / f"made-seed{args.seed}{'-phone' if args.phone else ''}"
            cmd = [sys.executable, str(shared_tool("make_calls.py")), str(data_root() / "pools" / "dev"), str(made),
                   "--calls", str(args.make), "--seed", str(args.seed), "--prefix", "made"]
            cmd += ["--phone", "--echo"] if args.phone else []
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            folders.append(made)
        for folder in folders:
            if not folder.is_dir():
                print(f"skipping {folder}: not a folder", file=sys.stderr)
                continue
            ours_dir, naive_dir = Path(tmp) / folder.name / "ours", Path(tmp) / folder.name / "naive"
            ours_dir.mkdir(parents=True)
            naive_dir.mkdir(parents=True)
            detect(folder, ours_dir, naive_dir, naive=not args.no_naive)
            ours = scorer.score(folder, ours_dir)
            naive = None if args.no_naive else scorer.score(folder, naive_dir)
            flagging = flags(folder, ours_dir)
            summary[folder.name] = {"callwatch": ours, "naive": naive, "flags": flagging}
            print("\n".join(report(folder.name, ours, naive)), flush=True)
            print(f"flags (signals only): P {flagging['precision']:.2f} R {flagging['recall']:.2f} "
                  f"(tp {flagging['tp']} fp {flagging['fp']} fn {flagging['fn']} tn {flagging['tn']})"
                  + (f" missed {' '.join(flagging['missed'])}" if flagging["missed"] else "")
                  + (f" wrongly flagged {' '.join(flagging['wrong'])}" if flagging["wrong"] else ""), flush=True)
            if args.episodes:
                print("\n".join(episodes(folder, ours_dir)), flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
