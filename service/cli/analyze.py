"""``callwatch analyze``: a recorded call through the same per-call core as the live service."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from audio.events import RATE
from audio.pcm import resample
from service.analysis.monitor import AlertEngine, CallMonitor, MonitorSettings, Segment
from service.analysis.redaction import apply_redactions
from service.analysis.text_events import TextEvent
from service.analysis.wire import CallEvent, Observation, observation, wire_times

CHUNK_S = 0.5
"""Audio pushed per step: any size gives the same events (the core is chunk-invariant)."""
INTERNAL = {"speech_start", "speech_end", "prosody"}


class InputError(Exception):
    """A file or option that cannot give two legs of call audio."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("call", nargs="?", type=Path, help="stereo (or multichannel) call recording, any sample rate")
    p.add_argument("--customer", type=Path, help="mono file of the customer leg (with --agent)")
    p.add_argument("--agent", type=Path, help="mono file of the agent leg (with --customer)")
    p.add_argument("--customer-channel", type=int, default=0, help="channel of the customer in CALL (default 0)")
    p.add_argument("--agent-channel", type=int, default=1, help="channel of the agent in CALL (default 1)")
    p.add_argument("--no-asr", action="store_true", help="acoustic events only, no transcription")
    p.add_argument("--language", default="auto", help="en, ru, ... or auto (default)")
    p.add_argument("--model", default=None, help="Whisper model: base (bundled), tiny.en, a folder or a hub name")
    p.add_argument("--out", type=Path, help="write the JSON lines here instead of stdout")
    p.add_argument("--all-events", action="store_true",
                   help="also print speech_start/speech_end and prosody (loudness/pitch) events")


def load_legs(args: argparse.Namespace) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    if args.call is not None and (args.customer or args.agent):
        raise InputError("give either CALL or --customer/--agent, not both")
    if args.call is not None:
        x, rate = _read(args.call)
        for name, ch in (("customer", args.customer_channel), ("agent", args.agent_channel)):
            if not 0 <= ch < x.shape[1]:
                raise InputError(f"{args.call} has {x.shape[1]} channel(s); no channel {ch} for the {name}")
        if x.shape[1] < 2:
            raise InputError(f"{args.call} is mono: give a stereo call, or --customer C.wav --agent A.wav")
        return _to_rate(x[:, args.customer_channel], rate), _to_rate(x[:, args.agent_channel], rate)
    if not (args.customer and args.agent):
        raise InputError("give a stereo CALL.wav, or both --customer C.wav and --agent A.wav")
    legs = []
    for path in (args.customer, args.agent):
        x, rate = _read(path)
        legs.append(_to_rate(x.mean(axis=1).astype(np.int16) if x.shape[1] > 1 else x[:, 0], rate))
    n = max(len(legs[0]), len(legs[1]))  # the shorter leg is silent at the end, not cut
    c, a = (np.pad(leg, (0, n - len(leg))) for leg in legs)
    return c, a


def _read(path: Path) -> tuple[NDArray[np.int16], int]:
    try:
        x, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return np.asarray(x, dtype=np.int16), int(rate)


def _to_rate(x: NDArray[np.int16], rate: int) -> NDArray[np.int16]:
    return resample(np.ascontiguousarray(x), rate, RATE)


def chunks(customer: NDArray[np.int16], agent: NDArray[np.int16]) -> Iterator[tuple[NDArray[np.int16], ...]]:
    step = int(CHUNK_S * RATE)
    for i in range(0, len(customer), step):
        yield customer[i: i + step], agent[i: i + step]


def analyze(customer: NDArray[np.int16], agent: NDArray[np.int16], monitor: CallMonitor,
            transcribe: object | None = None, progress: IO[str] | None = None) -> list[Observation]:
    """Runs a whole call; ``transcribe`` is a callable(list[Segment]) -> list[(text, words, language)]."""
    events: list[Observation] = []
    total = max(len(customer), 1)
    next_report = 0.0
    live = progress is not None and progress.isatty()
    step = 0.02 if live else 0.25  # a log file gets four lines, a terminal a moving counter
    head, tail = ("\r", "") if live else ("", "\n")
    for c, a in chunks(customer, agent):
        events.extend(monitor.push(c, a))
        if transcribe is not None:
            events.extend(_transcribe(monitor, monitor.take_segments(), transcribe))
        if progress is not None and monitor.analyzer.samples / total >= next_report:
            progress.write(f"{head}analyzed {monitor.time_s:7.1f} s of {total / RATE:.1f} s{tail}")
            next_report += step
    events.extend(monitor.finish())
    if transcribe is not None:
        events.extend(_transcribe(monitor, monitor.take_segments(), transcribe))
    if progress is not None:
        progress.write(f"{head}analyzed {total / RATE:.1f} s of {total / RATE:.1f} s\n")
    # Sorted by t, stably: events known at the same moment keep the order they were made in.
    return sorted(events, key=lambda e: wire_times(e)[0])


def triage(events: Sequence[Observation | dict[str, Any]], *, call_id: str, asr: bool,
           duration: float) -> list[dict[str, Any]]:
    """The events in their wire form (JSON lines) with the alerts the live service would raise on them, each right
    after its cause, and the same ``call_ended`` (escalation score, flagged, flags, counts) at the end: one
    engine, offline and live. ``events``: the monitor's, or their wire forms (``to_dict``)."""
    engine = AlertEngine(call_id, asr=asr)
    counts: Counter[str] = Counter()
    out: list[dict[str, Any]] = []
    for ev in events:
        d, typed = (ev, observation(ev)) if isinstance(ev, dict) else (ev.to_dict(), ev)
        out.append(d)
        kind = str(d.get("type"))
        if kind not in INTERNAL and kind != "prosody":
            counts[kind] += 1
        if typed is None:
            continue
        for alert in engine.observe(typed, cite=CallEvent.from_wire(d)):
            counts["alert"] += 1 if alert.type == "alert" else -1
            out.append(alert.to_dict())
    call = {"id": call_id, "status": "ended", "duration": round(duration, 3), **engine.call_fields(),
            "counts": dict(counts)}
    out.append({"type": "call_ended", "t": round(duration, 3), "call": call})
    return out


def _transcribe(monitor: CallMonitor, segments: list[Segment], transcribe: object) -> list[TextEvent]:
    if not segments:
        return []
    out: list[TextEvent] = []
    results = transcribe(segments)  # type: ignore[operator]
    for seg, (text, words, language) in zip(segments, results, strict=True):
        out.extend(monitor.add_transcript(seg.leg, seg.start_s, seg.end_s, text, words, language))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        customer, agent = load_legs(args)
    except InputError as exc:
        print(f"callwatch analyze: {exc}", file=sys.stderr)
        return 2
    language = None if args.language == "auto" else args.language
    transcribe = None
    if not args.no_asr:
        from service.analysis.offline_asr import build_offline_asr

        try:
            transcribe = build_offline_asr(args.model, language)
        except Exception as exc:  # a model problem is the operator's to fix: one line, no trace
            print(f"callwatch analyze: {exc}", file=sys.stderr)
            return 2
    monitor = CallMonitor(MonitorSettings(), language=language)
    started = time.perf_counter()
    events = analyze(customer, agent, monitor, transcribe, sys.stderr)
    out = args.out.open("w") if args.out else sys.stdout
    try:
        # What is printed is what a store keeps after the call: utterances in their final, redacted form.
        call_id = (args.call or args.customer).stem
        seconds = len(customer) / RATE
        triaged = triage(events, call_id=call_id, asr=transcribe is not None, duration=seconds)
        for d in apply_redactions(triaged):
            if args.all_events or d["type"] not in INTERNAL:
                out.write(json.dumps(d, ensure_ascii=False) + "\n")
    finally:
        if args.out:
            out.close()
    took = time.perf_counter() - started
    print(f"{seconds:.1f} s of call in {took:.1f} s ({seconds / max(took, 1e-9):.0f}x real time)", file=sys.stderr)
    return 0
