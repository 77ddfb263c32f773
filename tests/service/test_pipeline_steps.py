"""One call through the live pipeline with a real hub and a writer that records its items: each analysis step goes
out as one writer item and each event is published once; a screen learns of the call's new score before the
alert that raised it; a skipped gap moves every time that goes out, the alerts' included."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from service.analysis.wire import CallEvent
from service.fanout.hub import Hub, Subscriber
from service.ingest.common import CallAudio, CallGap, CallStart
from service.live.pipeline import LiveCall, Runtime
from service.storage.backends import CallStore
from service.storage.writer import Writer
from tests.service.conftest import make_settings
from tests.signals import leg, vowel

Step = tuple[str, list[tuple[int, CallEvent]], dict[str, Any] | None]


class Recorded(Hub):
    def __init__(self) -> None:
        super().__init__(queue_size=100_000)
        self.sent: list[CallEvent] = []

    def publish(self, ev: CallEvent | dict[str, Any], agent_id: str) -> None:
        assert isinstance(ev, CallEvent), "the pipeline publishes envelopes, not dicts"
        self.sent.append(ev)
        super().publish(ev, agent_id)


class Steps(Writer):
    """Keeps each item instead of writing it."""

    def __init__(self) -> None:
        super().__init__(cast(CallStore, None))
        self.steps: list[Step] = []

    def step(self, call_id: str, events: Sequence[tuple[int, CallEvent]], call: dict[str, Any] | None = None) -> None:
        self.steps.append((call_id, list(events), call))

    def db(self, op: str, arg: Any) -> None:
        raise AssertionError(f"a write outside a step: {op}")


def drain(sub: Subscriber) -> list[CallEvent]:
    out = []
    while not sub.queue.empty():
        ev = sub.queue.get_nowait()
        assert ev is not None
        out.append(ev)
    return out


async def interrupted_call(tmp_path: Path, *, gap_s: float = 0.0) -> tuple[Recorded, Steps, list[CallEvent]]:
    """8 s: the customer talks from 1 s to 5 s, the agent cuts in at 3 s; ``gap_s`` of the call skipped at 1 s."""
    customer = leg(8.0, [(1.0, vowel(200, -24, 4.0))], seed=1)
    agent = leg(8.0, [(3.0, vowel(110, -24, 3.0))], seed=2)
    hub, writer = Recorded(), Steps()
    screen = hub.subscribe("agent", "a1")
    rt = Runtime(make_settings(tmp_path, recording="none"), hub, writer)
    call = LiveCall(rt, CallStart("c1", "a1"))
    rt.calls[call.id] = call
    call.begin()
    for i in range(0, len(customer), 1600):
        if gap_s and i == 8000:
            call.skip(CallGap(int(gap_s * 8000)))
        call.feed(CallAudio.of_legs(customer[i: i + 1600], agent[i: i + 1600]))
    await call.close()
    return hub, writer, drain(screen)


async def test_a_screen_learns_the_new_score_before_the_alert_that_raised_it(tmp_path: Path) -> None:
    _, _, screen = await interrupted_call(tmp_path)
    kinds = [e.type for e in screen]
    i = kinds.index("alert")
    assert kinds[i - 2: i + 1] == ["interruption", "call_updated", "alert"]
    call = screen[i - 1].wire["call"]
    assert call["escalation_score"] == 8 and call["flags"] == ["interruption"] and call["counts"]["alert"] == 1
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended"


async def test_one_analysis_step_is_one_writer_item_and_each_event_is_published_once(tmp_path: Path) -> None:
    hub, writer, _ = await interrupted_call(tmp_path)
    # Each event once to the hub, and the store gets those very envelopes, numbered in the order they went out.
    assert len({id(e) for e in hub.sent}) == len(hub.sent)
    stored = [(seq, ev) for _, events, _ in writer.steps for seq, ev in events]
    assert sorted(seq for seq, _ in stored) == list(range(len(hub.sent)))
    assert all(hub.sent[seq] is ev for seq, ev in stored)
    assert all(call_id == "c1" and (events or call) for call_id, events, call in writer.steps)
    # The step that alerted: its observation, the call's new row and event, and the alert, in one item.
    [(_, events, row)] = [s for s in writer.steps if any(e.type == "alert" for _, e in s[1])]
    assert [e.type for _, e in events] == ["interruption", "call_updated", "alert"]
    assert [seq for seq, _ in events] == list(range(events[0][0], events[0][0] + 3))
    assert row is not None and row == events[1][1].wire["call"] and row["escalation_score"] == 8
    # The call's lifecycle: its row with each of its events.
    first, last = writer.steps[0], writer.steps[-1]
    assert [e.type for _, e in first[1]] == ["call_started"] and first[2] is not None
    assert [e.type for _, e in last[1]] == ["call_ended"] and last[2] is not None and last[2]["status"] == "ended"
    # Without redaction holding anything back, fewer writer items than events: an alert costs no extra item.
    assert len(writer.steps) < len(hub.sent)


async def test_after_a_skipped_gap_every_time_that_goes_out_is_on_the_calls_clock(tmp_path: Path) -> None:
    hub, _, screen = await interrupted_call(tmp_path, gap_s=3.0)
    [gap] = [e.wire for e in hub.sent if e.type == "gap"]
    assert gap == {"type": "gap", "start": 1.0, "duration": 3.0, "t": 4.0, "call_id": "c1"}
    [interruption] = [e for e in screen if e.type == "interruption"]
    [alert] = [e for e in screen if e.type == "alert"]
    assert abs(float(interruption.wire["start"]) - 6.0) < 0.1  # cut in 3 s into the audio, 6 s into the call
    assert alert.wire["t"] == interruption.wire["t"] and alert.wire["cause"] == [interruption.wire]
    assert alert.wire["cause"][0] is interruption.wire  # the cause is the event as it went out, made once
    after = [e.wire for e in hub.sent[[e.type for e in hub.sent].index("gap") + 1:]]
    assert all(float(w["t"]) >= 4.0 for w in after) and all(float(w.get("start", 4.0)) >= 4.0 for w in after)
