"""The writer: one item per analysis step, a bad row skipped without the batch, and shutdown and reads:
everything queued is stored, unless the database stops answering."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.analysis.wire import CallChanged, CallEvent
from service.storage.sqlite import Store
from service.storage.writer import Writer


class HangingStore:
    """Stores batches until ``hang`` is set; then a write blocks like a statement to a vanished host."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.written: list[tuple[str, Any]] = []

    def write(self, ops: Sequence[tuple[str, Any]]) -> None:
        if self.hang.is_set():
            self.release.wait(timeout=30)
        self.written.extend(ops)


async def test_close_writes_everything_queued() -> None:
    store = HangingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    writer.start()
    for k in range(5):
        writer.db("event", k)
    assert await writer.close(timeout_s=10) == 0
    assert [arg for _, arg in store.written] == [0, 1, 2, 3, 4]


async def test_close_gives_up_on_a_database_that_stopped_answering() -> None:
    store = HangingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    writer.start()
    writer.db("event", 0)
    await writer.flush()
    store.hang.set()
    writer.db("event", 1)
    writer.db("event", 2)
    try:
        left = await writer.close(timeout_s=0.2)
    finally:
        store.release.set()  # let the stuck thread go, as the TCP timeout would
    assert left >= 1
    assert [arg for _, arg in store.written][:1] == [0]


async def test_a_read_waits_for_queued_writes_but_not_for_a_stuck_database() -> None:
    store = HangingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    writer.start()
    writer.db("event", 0)
    assert await writer.settle(10) is True
    assert [arg for _, arg in store.written] == [0]
    store.hang.set()
    writer.db("event", 1)
    try:
        assert await writer.settle(0.1) is False  # gave up: the read goes ahead with what is stored
        assert [arg for _, arg in store.written] == [0]
    finally:
        store.release.set()
    store.hang.clear()
    assert await writer.settle(10) is True  # the abandoned wait left nothing behind that breaks the writer
    assert [arg for _, arg in store.written] == [0, 1]
    assert await writer.close(timeout_s=10) == 0


class RecordingStore:
    """Keeps every batch it is given, as given."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, Any]]] = []

    def write(self, ops: Sequence[tuple[str, Any]]) -> int:
        self.batches.append(list(ops))
        return 0


DEAD_AIR = {"type": "dead_air", "start": 20.0, "duration": 4.0, "t": 24.0, "call_id": "c1"}
UTTERANCE = {"type": "utterance", "leg": "customer", "start": 1.24, "end": 3.0, "text": "Hello there",
             "language": "en", "t": 3.5, "call_id": "c1"}


def call_row(call_id: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": call_id, "agent_id": "a1", "source": "native", "language": "en", "started": 100.0,
                           "ended": None, "status": "live", "duration": 0.0, "escalation_score": 0, "flagged": False,
                           "flags": [], "counts": {}, "recording": None}
    row.update(over)
    return row


async def test_one_analysis_step_is_one_item() -> None:
    store = RecordingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    updated = CallEvent("c1", CallChanged("call_updated", 5.0, call_row("c1")))
    dead_air = CallEvent.from_wire(DEAD_AIR)
    writer.step("c1", [(0, updated), (1, dead_air)], call_row("c1", duration=5.0))
    writer.step("c1", [(2, CallEvent.from_wire(UTTERANCE))])
    assert writer.depth == 2
    writer.start()
    assert await writer.close(timeout_s=10) == 0
    (ops,) = store.batches
    assert [name for name, _ in ops] == ["step", "step"]
    (call_id, events, call), second = ops[0][1], ops[1][1]
    assert call_id == "c1" and call == call_row("c1", duration=5.0) and second[2] is None
    assert events == [(0, updated), (1, dead_air)] and events[0][1] is updated  # the envelopes themselves
    assert [ev.wire for _, ev in second[1]] == [UTTERANCE]


@dataclass(frozen=True)
class Unserialisable:
    type: str = "dead_air"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "t": 2.0, "cause": {1, 2}}  # a set: not JSON


async def test_a_bad_row_is_logged_and_skipped_and_the_rest_of_the_batch_is_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    writer = Writer(store)
    writer.db("call", call_row("c1"))
    writer.db("events", ("c1", 0, [UTTERANCE]))
    writer.db("call", call_row("c2", agent_id=None))  # the database refuses it: NOT NULL
    writer.step("c1", [(1, CallEvent("c1", Unserialisable())), (2, CallEvent.from_wire(DEAD_AIR))],
                call_row("c1", duration=24.0))
    writer.db("call", call_row("c3"))
    writer.start()
    try:
        with caplog.at_level(logging.ERROR, "callwatch.store"):
            await writer.flush()  # one batch, one transaction
        assert {c["id"] for c in store.list_calls()} == {"c1", "c3"}
        assert store.get_call("c1") == call_row("c1", duration=24.0)
        assert store.events("c1") == [UTTERANCE, DEAD_AIR]
        assert writer.failures == 1 and writer.written == 5
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    finally:
        await writer.close(timeout_s=10)
        store.close()


class OperationalError(Exception):
    """What sqlite3 and psycopg both call a database that is away."""


class FlakyStore(RecordingStore):
    """Away for its first ``away`` writes, then takes them."""

    def __init__(self, away: int) -> None:
        super().__init__()
        self.away = away

    def write(self, ops: Sequence[tuple[str, Any]]) -> int:
        if self.away:
            self.away -= 1
            raise OperationalError("could not connect to server")
        return super().write(ops)


async def test_a_batch_waits_while_the_database_is_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("service.storage.writer.RETRY_FIRST_S", 0.01)
    store = FlakyStore(away=2)
    writer = Writer(store)  # type: ignore[arg-type]
    writer.step("c1", [(0, CallEvent.from_wire(DEAD_AIR))], call_row("c1"))
    writer.start()
    assert await writer.close(timeout_s=10) == 0
    assert [[name for name, _ in ops] for ops in store.batches] == [["step"]]
    assert (writer.retries, writer.failures) == (2, 0)
