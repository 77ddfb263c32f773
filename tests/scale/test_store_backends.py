"""The SQLite and PostgreSQL stores behave the same: every check runs over both, through ``open_store``."""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from service.analysis.redaction import UtteranceRedacted
from service.analysis.text_events import UtteranceEvent
from service.analysis.wire import CallChanged, CallEvent
from service.storage import postgres as store_pg
from service.storage import sqlite as sqlite_store
from service.storage.backends import CallStore, UnsupportedDatabase, migrate, open_store


class FakeClock:
    """Unix seconds that move only when the test says: far from the real clock, so a store that read that
    instead would see every heartbeat as decades old (or new)."""

    def __init__(self, now: float = 1_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def store(store_url: str) -> Iterator[CallStore]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


def call(call_id: str, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": call_id, "agent_id": "a1", "source": "native", "language": "en",
                           "started": 1_700_000_000.123456, "ended": None, "status": "live", "duration": 0.0,
                           "escalation_score": 0, "flagged": False, "flags": [], "counts": {}, "recording": None}
    row.update(over)
    return row


ALERT = {"type": "alert", "id": "c1-1", "rule": "interruption", "severity": "warning", "t": 12.5,
         "message": "You talked over the customer", "tip": "Let them finish", "cause": {"type": "interruption"},
         "call_id": "c1"}
UTTERANCE = {"type": "utterance", "leg": "customer", "start": 1.24, "end": 3.0, "text": "Hello there",
             "language": "en", "t": 3.5, "call_id": "c1"}
DEAD_AIR = {"type": "dead_air", "start": 20.0, "duration": 4.0, "t": 24.0, "call_id": "c1"}


def test_a_call_with_its_events_transcript_and_alerts(store: CallStore) -> None:
    store.write([("call", call("c1"))])
    store.write([("events", ("c1", 0, [UTTERANCE, ALERT])), ("events", ("c1", 2, [DEAD_AIR]))])
    store.write([("call", call("c1", status="completed", ended=1_700_000_060.5, duration=60.25,
                               escalation_score=3, flagged=True, flags=["interruption"],
                               counts={"alert": 1, "utterance": 1}))])

    got = store.get_call("c1")
    assert got == call("c1", status="completed", ended=1_700_000_060.5, duration=60.25, escalation_score=3,
                       flagged=True, flags=["interruption"], counts={"alert": 1, "utterance": 1})
    assert got is not None and got["flagged"] is True
    assert math.isclose(got["started"], 1_700_000_000.123456, abs_tol=1e-6)  # not a 4-byte float
    assert store.events("c1") == [UTTERANCE, ALERT, DEAD_AIR]
    assert list(store.events("c1")[1]) == list(ALERT)  # keys come back in the order they were written
    assert store.events("c1", types=["alert", "dead_air"]) == [ALERT, DEAD_AIR]
    assert store.events("c1", since=10.0) == [ALERT, DEAD_AIR]
    assert store.events("c1", limit=1) == [UTTERANCE]
    assert store.transcript("c1") == [{"leg": "customer", "start": 1.24, "end": 3.0, "text": "Hello there",
                                       "language": "en"}]
    assert store.get_call("nope") is None
    assert store.events("nope") == []


def test_rewriting_an_event_sequence_replaces_it(store: CallStore) -> None:
    store.write([("call", call("c1")), ("events", ("c1", 0, [ALERT]))])
    changed = {**ALERT, "severity": "critical"}
    store.write([("events", ("c1", 0, [changed]))])
    assert store.events("c1") == [changed]


def test_a_reused_call_id_gets_a_new_session_id_and_the_first_call_is_untouched(store: CallStore) -> None:
    assert store.claim_call(call("c1", agent_id="first")) == "c1"
    store.write([("events", ("c1", 0, [UTTERANCE, ALERT])), ("call", call("c1", agent_id="first", status="ended"))])
    store.add_note("c1", "sup", "first take")
    assert store.claim_call(call("c1", agent_id="second")) == "c1~2"
    assert store.events("c1") == [UTTERANCE, ALERT] and [n["text"] for n in store.notes("c1")] == ["first take"]
    first, second = store.get_call("c1"), store.get_call("c1~2")
    assert first is not None and first["agent_id"] == "first" and first["status"] == "ended"
    assert second is not None and second["agent_id"] == "second" and second["status"] == "live"
    with pytest.raises(sqlite_store.CallLive):  # its latest session is still streaming
        store.claim_call(call("c1"))
    store.write([("call", call("c1~2", status="ended"))])
    assert store.claim_call(call("c1")) == "c1~3"
    assert sqlite_store.previous_session("c1~3") == "c1~2" and sqlite_store.previous_session("c1~2") == "c1"
    assert sqlite_store.previous_session("c1") is None


def test_the_workers_are_listed(store: CallStore) -> None:
    store.heartbeat("w-b")
    store.heartbeat("w-a")
    assert store.worker_ids() == ["w-a", "w-b"]


@dataclass(frozen=True)
class Unserialisable:
    type: str = "dead_air"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "t": 1.0, "cause": {1, 2}}  # a set: not JSON


def test_a_row_that_cannot_be_made_is_skipped_and_the_rest_of_the_batch_written(
        store: CallStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "callwatch.store"):
        skipped = store.write([("call", call("c1")),
                               ("events", ("c1", 0, [UTTERANCE, {"type": "alert", "t": 1.0}, DEAD_AIR])),
                               ("step", ("c1", [(3, CallEvent("c1", Unserialisable())),
                                                (4, CallEvent.from_wire(ALERT))], None)),
                               ("no_such_op", None)])
    assert skipped == 3
    assert store.get_call("c1") == call("c1")
    assert store.events("c1") == [UTTERANCE, DEAD_AIR, ALERT]
    assert [r.getMessage() for r in caplog.records] == [
        "skipped event 1 of call c1, which could not be made: KeyError: 'id'",
        "skipped event 3 of call c1, which could not be made: TypeError: Object of type set is not JSON serializable",
        "skipped a row that could not be made ('no_such_op' op): ValueError: unknown write op 'no_such_op'"]


def test_a_row_the_database_refuses_is_skipped_and_the_rest_of_the_batch_written(
        store: CallStore, caplog: pytest.LogCaptureFixture) -> None:
    store.write([("call", call("c0"))])
    with caplog.at_level(logging.WARNING, "callwatch.store"):
        skipped = store.write([("call", call("c1")), ("events", ("c1", 0, [ALERT])),
                               ("call", call("c2", agent_id=None)),  # NOT NULL
                               ("step", ("c1", [(1, CallEvent.from_wire(DEAD_AIR))], call("c1", duration=4.0)))])
    assert skipped == 1
    assert {c["id"] for c in store.list_calls()} == {"c0", "c1"}
    assert store.get_call("c1") == call("c1", duration=4.0) and store.events("c1") == [ALERT, DEAD_AIR]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("skipped a row the database refused (call row of c2): ")
    assert "null" in errors[0].lower() and "\n" not in errors[0]  # one line: the row's content stays out of logs
    store.write([("call", call("c2"))])  # and the store is still usable
    assert {c["id"] for c in store.list_calls()} == {"c0", "c1", "c2"}


class OperationalError(Exception):
    """What sqlite3 and psycopg both call a database that is away (``writer.transient``)."""


def test_a_database_that_is_away_writes_nothing_and_says_so_for_the_writer_to_retry(
        store: CallStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def away(*_: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(type(store), "_insert_events", away)
    with pytest.raises(OperationalError):  # not taken for a bad row: nothing is skipped, nothing written
        store.write([("call", call("c1")), ("events", ("c1", 0, [ALERT]))])
    monkeypatch.undo()
    assert store.get_call("c1") is None
    assert store.write([("call", call("c1")), ("events", ("c1", 0, [ALERT]))]) == 0  # the retry
    assert store.events("c1") == [ALERT]


def test_one_analysis_step_is_written_from_its_typed_events(store: CallStore) -> None:
    started = CallEvent("c1", CallChanged("call_started", 0.0, call("c1")))
    utterance = CallEvent("c1", UtteranceEvent("customer", 1.24, 3.0, "Card 4111", "en", 3.5,
                                               words=(("Card", 1.24, 1.6), ("4111", 1.7, 3.0))))
    redacted = CallEvent("c1", UtteranceRedacted("customer", 1.24, 3.0, "Card [card]", "en", 4.0,
                                                 words=(("Card", 1.24, 1.6), ("[card]", 1.7, 3.0)), tags=("card",),
                                                 silenced=((1.7, 3.0),)))
    assert store.write([("step", ("c1", [(0, started), (1, utterance)], call("c1")))]) == 0
    assert store.get_call("c1") == call("c1")
    assert store.events("c1") == [started.wire, utterance.wire]
    assert store.transcript("c1") == [{"leg": "customer", "start": 1.24, "end": 3.0, "text": "Card 4111",
                                       "language": "en"}]

    store.write([("step", ("c1", [(2, redacted)], call("c1", duration=4.0)))])
    assert store.events("c1") == [started.wire, {**utterance.wire, "text": "Card [card]",
                                                 "words": redacted.wire["words"]}, redacted.wire]
    assert [u["text"] for u in store.transcript("c1")] == ["Card [card]"]
    assert store.get_call("c1") == call("c1", duration=4.0)


def test_notes(store_url: str) -> None:
    clock = FakeClock()
    store = open_store(store_url, clock=clock)
    try:
        check_notes(store, clock)
    finally:
        store.close()


def check_notes(store: CallStore, clock: FakeClock) -> None:
    first = store.add_note("c1", "sup", "Customer asked for a manager")
    clock.advance(1.5)
    second = store.add_note("c1", "lead", "Called back")
    store.add_note("c2", "sup", "other call")
    assert first["id"] < second["id"]
    assert first["call_id"] == "c1" and first["author"] == "sup"
    assert (first["created"], second["created"]) == (1_000_000_000.0, 1_000_000_001.5)
    assert store.notes("c1") == [{**{k: n[k] for k in ("id", "author", "text", "created")}, "t": None}
                                 for n in (first, second)]  # a note at a moment has its t (docs/coaching.md)


def test_list_filters_and_paging(store: CallStore) -> None:
    store.write([
        ("call", call("old", started=100.0, status="completed", ended=160.0)),
        ("call", call("flagged", started=200.0, status="completed", ended=260.0, flagged=True)),
        ("call", call("other-agent", started=300.0, agent_id="a2")),
        ("call", call("newest", started=400.0)),
    ])

    def ids(**kw: Any) -> list[str]:
        return [c["id"] for c in store.list_calls(**kw)]

    assert ids() == ["newest", "other-agent", "flagged", "old"]
    assert ids(status="live") == ["newest", "other-agent"]
    assert ids(flagged=True) == ["flagged"]
    assert ids(flagged=False) == ["newest", "other-agent", "old"]
    assert ids(agent_id="a2") == ["other-agent"]
    assert ids(agent_id="a1", status="completed") == ["flagged", "old"]
    assert ids(limit=2) == ["newest", "other-agent"]
    assert ids(limit=2, offset=2) == ["flagged", "old"]


def test_expired_recordings(store: CallStore) -> None:
    store.write([("call", call("done", status="completed", ended=10.0)), ("call", call("live")),
                 ("recording", ("done", "/rec/done.wav"))])
    assert store.expired_recordings(before=20.0) == [("done", "/rec/done.wav")]
    assert store.expired_recordings(before=5.0) == []
    store.write([("recording", ("done", None))])
    assert store.expired_recordings(before=20.0) == []


def test_only_calls_of_dead_workers_are_closed_with_what_was_received(store_url: str) -> None:
    clock = FakeClock()
    legacy, a, b = (open_store(store_url, worker_id=w, clock=clock) for w in (None, "worker-a", "worker-b"))
    try:
        legacy.write([("call", call("old"))])  # stored before workers were recorded
        a.write([("call", call("a1", duration=2.0)), ("events", ("a1", 0, [UTTERANCE, DEAD_AIR]))])
        b.write([("call", call("b1")), ("call", call("b-done", status="ended", ended=5.0))])
        a.heartbeat("worker-a")
        b.heartbeat("worker-b")
        clock.advance(29.0)
        assert b.close_orphaned_calls("worker-b", 30.0) == []  # A is alive; the old call waits for a start
        clock.advance(2.0)
        b.heartbeat("worker-b")
        closed = b.close_orphaned_calls("worker-b", 30.0)  # A has not been heard from for 31 s: dead
        started = call("a1")["started"]
        assert closed == [call("a1", status="interrupted", duration=24.0, ended=started + 24.0)]
        assert b.close_orphaned_calls("worker-b", 30.0) == []  # once
        assert b.worker_ids() == ["worker-b"]  # A is forgotten
        assert b.get_call("a1") == closed[0]
        assert store_events_types(b, "a1") == ["utterance", "dead_air", "call_ended"]
        assert b.events("a1", types=["call_ended"]) == [{"type": "call_ended", "call_id": "a1", "t": 24.0,
                                                         "call": closed[0]}]
        status = {c["id"]: c["status"] for c in b.list_calls()}
        assert status == {"old": "live", "a1": "interrupted", "b1": "live", "b-done": "ended"}

        # B restarts under the same id: its previous run's calls, and the ones from before workers, are over.
        b.write([("call", call("b2", duration=7.5))])
        restarted = open_store(store_url, worker_id="worker-b", clock=clock)
        try:
            closed = restarted.close_orphaned_calls("worker-b", 30.0, startup=True)
            assert sorted((c["id"], c["duration"]) for c in closed) == [("b1", 0.0), ("b2", 7.5), ("old", 0.0)]
            assert {c["id"]: c["status"] for c in restarted.list_calls()} == {
                "old": "interrupted", "a1": "interrupted", "b1": "interrupted", "b2": "interrupted",
                "b-done": "ended"}
            assert restarted.events("b2") == [{"type": "call_ended", "call_id": "b2", "t": 7.5,
                                               "call": closed[[c["id"] for c in closed].index("b2")]}]
        finally:
            restarted.close()
    finally:
        for s in (legacy, a, b):
            s.close()


def test_a_live_worker_keeps_its_calls_and_a_clean_shutdown_forgets_it(store_url: str) -> None:
    clock = FakeClock()
    a, b = (open_store(store_url, worker_id=w, clock=clock) for w in ("worker-a", "worker-b"))
    try:
        a.write([("call", call("a1"))])
        for _ in range(3):
            a.heartbeat("worker-a")
            b.heartbeat("worker-b")
            clock.advance(5.0)
            assert b.close_orphaned_calls("worker-b", 5.0) == []
            assert a.close_orphaned_calls("worker-a", 5.0) == []  # never its own while it runs
        assert a.worker_ids() == ["worker-a", "worker-b"]
        a.forget_worker("worker-a")  # gone without ending a1 (cannot happen after close_all; here it shows why)
        assert [c["id"] for c in b.close_orphaned_calls("worker-b", 30.0)] == ["a1"]
    finally:
        a.close()
        b.close()


def test_without_a_clock_the_store_keeps_its_own_time(store_url: str) -> None:
    """No clock given: the machine's (SQLite) or the database's (PostgreSQL, for heartbeats and sweeps)."""
    a, b = (open_store(store_url, worker_id=w) for w in ("worker-a", "worker-b"))
    try:
        a.write([("call", call("a1"))])
        a.heartbeat("worker-a")
        b.heartbeat("worker-b")
        assert b.close_orphaned_calls("worker-b", 30.0) == []
        assert [c["id"] for c in b.close_orphaned_calls("worker-b", -1.0)] == ["a1"]  # a heartbeat from the future
        assert isinstance(a.add_note("a1", "sup", "x")["created"], float)
    finally:
        a.close()
        b.close()


def test_a_database_from_before_workers_is_upgraded_in_place(store_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", sqlite_store.MIGRATIONS[:1])
    monkeypatch.setattr(store_pg, "MIGRATIONS", store_pg.MIGRATIONS[:1])
    open_store(store_url).close()  # schema version 1, as the first release left it
    raw_sql(store_url, "INSERT INTO calls (id, agent_id, source, language, started, status, duration) "
                       "VALUES ('v1-live', 'a1', 'native', 'en', 100.0, 'live', 3.0)")
    monkeypatch.undo()
    assert migrate(store_url) == len(sqlite_store.MIGRATIONS)
    store = open_store(store_url, worker_id="w1")
    try:
        assert store.get_call("v1-live") == call("v1-live", started=100.0, duration=3.0)
        assert store.close_orphaned_calls("w1", 30.0) == []  # ownerless: only a starting worker closes it
        assert [c["id"] for c in store.close_orphaned_calls("w1", 30.0, startup=True)] == ["v1-live"]
        assert store.get_call("v1-live") == call("v1-live", started=100.0, duration=3.0, ended=103.0,
                                                 status="interrupted")
    finally:
        store.close()


def raw_sql(url: str, sql: str) -> None:
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
            db.execute(sql)
            db.commit()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)


def store_events_types(store: CallStore, call_id: str) -> list[str]:
    return [e["type"] for e in store.events(call_id)]


def test_reopening_keeps_completed_calls_and_migrations_are_idempotent(store_url: str) -> None:
    first = open_store(store_url)
    first.write([("call", call("c1", status="completed", ended=5.0, counts={"alert": 2})),
                 ("events", ("c1", 0, [ALERT]))])
    note = first.add_note("c1", "sup", "kept")
    first.close()

    assert migrate(store_url) == len(sqlite_store.MIGRATIONS)
    again = open_store(store_url)
    try:
        assert again.migrate() == len(sqlite_store.MIGRATIONS)
        assert again.get_call("c1") == call("c1", status="completed", ended=5.0, counts={"alert": 2})
        assert again.events("c1") == [ALERT]
        assert [n["id"] for n in again.notes("c1")] == [note["id"]]
        assert again.add_note("c1", "sup", "after")["id"] > note["id"]
    finally:
        again.close()


def test_both_backends_have_the_same_migration_steps() -> None:
    assert len(store_pg.MIGRATIONS) == len(sqlite_store.MIGRATIONS)
    assert store_pg.CALL_COLUMNS == sqlite_store.CALL_COLUMNS


def test_unknown_database_urls_are_refused_without_echoing_a_password() -> None:
    with pytest.raises(UnsupportedDatabase, match="sqlite:///PATH or postgresql://") as err:
        open_store("mysql://root:hunter2@db/callwatch")
    assert "hunter2" not in str(err.value)
