"""The typed events and their wire form: read back without loss, moved onto the call's clock once, and the same
alerts whether ``triage`` is given the monitor's events or their JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
import soundfile as sf

from audio.events import DeadAir, Interruption
from service.analysis.monitor import CallMonitor, Segment
from service.analysis.text_events import PhraseEvent, UtteranceEvent
from service.analysis.wire import CallChanged, CallEvent, Gap, Received, call_clock, observation, wire_times
from service.cli.analyze import analyze, triage
from tests.service.conftest import CALLS

SAID = {"customer": ["I want to speak to a manager", "this is ridiculous", "my card is 4 1 1 1", "1 1 1 1",
                     "1 1 1 1", "1 1 1 1", "I'm going to cancel my account"],
        "agent": ["mm-hm", "I'm sorry about that", "okay", "let me check that for you right now please wait"]}


def scripted(segments: Sequence[Segment]) -> list[tuple[str, list[tuple[str, float, float]], str]]:
    """A recogniser that says ``SAID`` in turn, its words spread over each segment."""
    out = []
    for seg in segments:
        lines = SAID[seg.leg]
        text = lines[scripted.said[seg.leg] % len(lines)]  # type: ignore[attr-defined]
        scripted.said[seg.leg] += 1  # type: ignore[attr-defined]
        tokens = text.split()
        step = (seg.end_s - seg.start_s - 0.4) / len(tokens)
        out.append((text, [(w, seg.start_s + 0.2 + i * step, seg.start_s + 0.2 + (i + 1) * step)
                           for i, w in enumerate(tokens)], "en"))
    return out


@pytest.fixture(scope="module")
def call_events() -> list:  # type: ignore[type-arg]
    path = CALLS / "dev-002-escalation.wav"
    if not path.is_file():
        pytest.skip(f"shared data not found at {CALLS} (set CALLWATCH_DATA)")
    x, _ = sf.read(path, dtype="int16", always_2d=True)
    scripted.said = {"customer": 0, "agent": 0}  # type: ignore[attr-defined]
    return analyze(np.ascontiguousarray(x[:, 0]), np.ascontiguousarray(x[:, 1]), CallMonitor(language="en"),
                   scripted)


@pytest.mark.shared
def test_every_event_reads_back_from_its_wire_form(call_events: list) -> None:  # type: ignore[type-arg]
    kinds = {ev.type for ev in call_events}
    assert kinds >= {"speech_start", "speech_end", "prosody", "interruption", "backchannel", "dead_air",
                     "raised_voice", "raised_voice_sustained", "raised_voice_end", "utterance", "utterance_redacted",
                     "phrase", "speaking_rate"}
    for ev in call_events:
        wire = ev.to_dict()
        back = observation(wire)
        assert back is not None and back.to_dict() == wire, ev
        assert wire_times(ev) == (wire["t"], wire.get("start"))


@pytest.mark.shared
def test_triage_gives_the_same_lines_from_typed_events_and_from_their_json(call_events: list) -> None:  # type: ignore[type-arg]
    typed = triage(call_events, call_id="c", asr=True, duration=300.0)
    dicts = triage([ev.to_dict() for ev in call_events], call_id="c", asr=True, duration=300.0)
    assert typed == dicts
    assert {d["type"] for d in typed} >= {"alert", "call_ended"}


def test_anything_else_does_not_read_as_an_observation() -> None:
    assert observation({"type": "call_started", "call": {}}) is None
    assert observation({"type": "alert", "id": "c-1"}) is None
    with pytest.raises((KeyError, ValueError, TypeError)):
        observation({"type": "interruption", "by": "nobody", "of": "agent", "start": 1, "overlap": 0, "t": 2})


def test_the_envelope_moves_points_in_time_not_lengths_and_keeps_its_clock() -> None:
    clock = call_clock((2.0,), (10.0,))
    ev = DeadAir(start=8000 * 3, duration=8000 * 5, t=8000 * 8)
    sent = CallEvent("c", ev, clock)
    assert sent.wire == {"type": "dead_air", "start": 13.0, "duration": 5.0, "t": 18.0, "call_id": "c"}
    assert sent.json == '{"type":"dead_air","start":13.0,"duration":5.0,"t":18.0,"call_id":"c"}'
    assert sent.wire is sent.wire and sent.to_dict() is sent.wire  # made once
    # Before the gap the clock changes nothing; an envelope without one is the monitor's time as it is.
    early = Interruption("agent", "customer", 8000, 4000, 12000)
    assert CallEvent("c", early, clock).wire == {**early.to_dict(), "call_id": "c"}
    assert CallEvent("c", UtteranceEvent("customer", 3.0, 4.0, "hi", "en", 4.5)).wire["end"] == 4.0
    assert CallEvent("c", UtteranceEvent("customer", 3.0, 4.0, "hi", "en", 4.5), clock).wire["end"] == 14.0


def test_lifecycle_and_gap_events_go_out_as_they_always_did() -> None:
    call = {"id": "c", "status": "live"}
    assert CallEvent("c", CallChanged("call_updated", 3.5, call)).wire == {
        "type": "call_updated", "t": 3.5, "call": call, "call_id": "c"}
    assert CallEvent("c", CallChanged("call_ended", 9.0, call, "end")).wire == {
        "type": "call_ended", "t": 9.0, "call": call, "reason": "end", "call_id": "c"}
    assert CallEvent("c", Gap(1.0, 3.0, 4.0)).wire == {"type": "gap", "start": 1.0, "duration": 3.0, "t": 4.0,
                                                       "call_id": "c"}
    received = CallEvent.from_wire({"type": "phrase", "call_id": "c", "t": 2.0})
    assert received.type == "phrase" and received.call_id == "c" and received.t == 2.0


def test_a_phrase_is_timed_as_its_wire_form_shows_it() -> None:
    ev = PhraseEvent("customer", "frustration", "fed up", 1.23456, 2.00049)
    assert wire_times(ev) == (2.0, 1.235) == (ev.to_dict()["t"], ev.to_dict()["start"])


def test_a_value_that_is_not_a_number_goes_out_as_null() -> None:
    """NaN and infinity are not JSON: a browser's JSON.parse and PostgreSQL refuse them."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    ev = CallEvent("c1", Received({"type": "prosody", "t": 1.0, "pitch_hz": float("nan"),
                                   "levels": [1.5, float("inf")], "leg": "agent"}))
    decoded = json.loads(ev.json, parse_constant=refuse)
    assert decoded["pitch_hz"] is None and decoded["levels"] == [1.5, None] and decoded["leg"] == "agent"
    plain = CallEvent("c1", Received({"type": "prosody", "t": 1.0, "pitch_hz": 120.0}))
    assert json.loads(plain.json, parse_constant=refuse)["pitch_hz"] == 120.0
