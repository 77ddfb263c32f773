"""Detector accuracy and delay on labelled calls, side by side with the naive floor, in one run.

    python -m benchmarks.detectors [FOLDER ...] [--make N --seed S [--phone]]

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

import soundfile as sf

from benchmarks.naive import naive_events
from service.analyze_cmd import INTERNAL, analyze
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


def detect(folder: Path, out_ours: Path, out_naive: Path) -> float:
    """Writes NAME.jsonl for both monitors; returns seconds of call audio."""
    seconds = 0.0
    for wav in sorted(folder.glob("*.wav")):
        x, rate = sf.read(str(wav), dtype="int16", always_2d=True)
        if rate != 8000:
            raise SystemExit(f"{wav}: labelled calls are 8 kHz, this one is {rate} Hz")
        truth = json.loads(wav.with_suffix(".json").read_text())
        ch = truth.get("channels", {"customer": 0, "agent": 1})
        c, a = x[:, ch["customer"]].copy(), x[:, ch["agent"]].copy()
        seconds += len(c) / rate
        events = analyze(c, a, CallMonitor())
        (out_ours / f"{wav.stem}.jsonl").write_text(
            "".join(json.dumps(e.to_dict()) + "\n" for e in events if e.type not in INTERNAL))
        (out_naive / f"{wav.stem}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in naive_events(c, a)))
    return seconds


def fmt(v: float | None) -> str:
    return "   -" if v is None else f"{v:4.2f}"


def report(name: str, ours: dict, naive: dict) -> list[str]:  # type: ignore[type-arg]
    lines = [f"== {name}: {ours['calls']} calls, {ours['hours'] * 60:.1f} min",
             f"{'':14s} {'monitor':8s} {'P':>5s} {'R':>5s} {'F1':>5s} {'tp':>4s} {'fp':>4s} {'fn':>4s} "
             f"{'d50':>5s} {'d95':>5s}"]
    for key in ("interruption", "raised_voice", "dead_air"):
        for label, s in (("callwatch", ours), ("naive", naive)):
            k = s[key]
            lines.append(f"{key:14s} {label:8s} {k['precision']:5.2f} {k['recall']:5.2f} {k['f1']:5.2f} "
                         f"{k['tp']:4d} {k['fp']:4d} {k['fn']:4d} {fmt(k['delay_p50']):>5s} {fmt(k['delay_p95']):>5s}")
    for label, s in (("callwatch", ours), ("naive", naive)):
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
            detect(folder, ours_dir, naive_dir)
            ours, naive = scorer.score(folder, ours_dir), scorer.score(folder, naive_dir)
            summary[folder.name] = {"callwatch": ours, "naive": naive}
            print("\n".join(report(folder.name, ours, naive)), flush=True)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
