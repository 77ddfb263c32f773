"""The data layer's queries, once for both databases: calls, events, redacted transcripts, alerts, notes, workers.

``SqlStore`` holds every query and the rules around them; ``sqlite.Store`` and ``postgres.PgStore`` are thin
subclasses that supply what differs: the connection and its locking, transactions and savepoints, the
placeholder style (the queries here are written with ``?``), the schema's types and its migrations, how a JSON
field is read in SQL, and which clock says what "now" is. Both take JSON columns as text and give them back
as text, so rows are made (and read) here, from the event's wire form, once.

Everything here is blocking; the service calls it through ``asyncio.to_thread`` (reads) or the single writer
task in ``service.storage.writer`` (writes), never from the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from service.analysis.redaction import replaced
from service.analysis.wire import CallChanged, CallEvent

log = logging.getLogger("callwatch.store")

Row = dict[str, Any]

CALL_COLUMNS = ("id", "agent_id", "source", "language", "started", "ended", "status", "duration",
                "escalation_score", "flagged", "flags", "counts", "recording")
_CALL_SELECT = f"SELECT {', '.join(CALL_COLUMNS)} FROM calls"
_CALL_INSERT = (f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}, worker) "
                f"VALUES ({', '.join('?' * (len(CALL_COLUMNS) + 1))}) ON CONFLICT (id) DO ")
_CALL_UPSERT = _CALL_INSERT + "UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in (*CALL_COLUMNS, "worker") if c != "id")
_EVENT_UPSERT = ("INSERT INTO events (call_id, seq, type, t, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (call_id, seq) "
                 "DO UPDATE SET type = excluded.type, t = excluded.t, body = excluded.body")
_ALERT_UPSERT = ("INSERT INTO alerts (id, call_id, rule, severity, t, body) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, rule = excluded.rule, "
                 "severity = excluded.severity, t = excluded.t, body = excluded.body")
_TRANSCRIPT_INSERT = 'INSERT INTO transcripts (call_id, leg, start, "end", text, language) VALUES (?, ?, ?, ?, ?, ?)'

# Live calls nobody follows any more, as seen by worker ``me`` at ``now``. Periodically: calls of workers whose
# heartbeat is older than the timeout (or gone). On start also the worker's own calls (left by its previous
# run under the same id) and calls from before workers were recorded. Parameters: me, cutoff, startup, me.
ORPHANED = ("status = 'live' AND (worker IS NOT NULL AND worker <> ? AND worker NOT IN "
            "(SELECT id FROM workers WHERE last_seen >= ?) OR ? AND (worker IS NULL OR worker = ?))")

ENDED = ("ended", "interrupted", "failed")
"""The statuses of a call that is over: its derived metrics are made when its row first says so (and again if
it is written again)."""
_STATUS = CALL_COLUMNS.index("status")

MAX_SESSIONS = 1000
"""Sessions one call id may have; past that, reusing it is refused (a sender stuck in a retry loop)."""


class CallLive(Exception):
    """A call id whose latest session is still live (two streams of one call), or that has had too many."""

    def __init__(self, call_id: str, why: str = "is already streaming") -> None:
        super().__init__(f"call {call_id} {why}")
        self.call_id = call_id


def session_ids(call_id: str) -> Iterator[str]:
    """The ids one call id's sessions get, in order: ``id``, ``id~2``, ``id~3``, ... Ingest ids never contain
    ``~``, so these never collide with an id a sender chose."""
    yield call_id
    for n in range(2, MAX_SESSIONS + 1):
        yield f"{call_id}~{n}"


def previous_session(call_id: str) -> str | None:
    """The id of the session before this one of the same call id, or None for a first session."""
    base, sep, n = call_id.rpartition("~")
    if not sep or not n.isdigit() or int(n) < 2:
        return None
    return base if n == "2" else f"{base}~{int(n) - 1}"


def interrupted(call: Row, last_t: float | None) -> Row:
    """A call cut off by a crash, closed with what was received: it lasted until its last stored event."""
    duration = round(max(float(call["duration"] or 0.0), float(last_t or 0.0)), 3)
    return {**call, "status": "interrupted", "duration": duration,
            "ended": call["ended"] if call["ended"] is not None else call["started"] + duration}


def transient(e: BaseException) -> bool:
    """The database is away or cannot write just now (sqlite3 and psycopg both call it OperationalError), as
    opposed to a row it rejects for what it is."""
    return any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(e).__mro__)


class Cursor(Protocol):
    """What the queries need of a DB-API cursor; sqlite3's and psycopg's both fit."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Any = ..., /) -> object: ...
    def executemany(self, sql: str, params: Iterable[Any], /) -> object: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


# -- rows, made once from what a batch holds ----------------------------------------------------------------


@dataclass(slots=True)
class _CallRow:
    values: list[Any]
    team: str | None = None
    """The agent's team, where the call object says (from the ingest's metadata)."""

    @property
    def ended(self) -> bool:
        return self.values[_STATUS] in ENDED


@dataclass(slots=True)
class _EventRow:
    call_id: str
    seq: int
    event: tuple[Any, ...]
    alert: tuple[Any, ...] | None = None
    transcript: tuple[Any, ...] | None = None
    redaction: Row | None = None


@dataclass(slots=True)
class _RecordingRow:
    call_id: str
    path: str | None


_Unit = _CallRow | _EventRow | _RecordingRow


def _call_row(call: Row, worker: str | None) -> _CallRow:
    team = call.get("team")
    return _CallRow(_call_values(call, worker), team if isinstance(team, str) and team else None)


def _call_values(call: Row, worker: str | None) -> list[Any]:
    values = [call.get(c) for c in CALL_COLUMNS]
    values[CALL_COLUMNS.index("flags")] = json.dumps(call.get("flags", []))
    values[CALL_COLUMNS.index("counts")] = json.dumps(call.get("counts", {}))
    values[CALL_COLUMNS.index("flagged")] = bool(call.get("flagged"))
    return [*values, worker]


def _event_row(call_id: str, seq: int, ev: CallEvent | Row) -> _EventRow:
    """One event's rows: the event, and its alert, transcript line or redaction. ``ev`` as a dict: an event
    in its wire form (kept for callers that still hold dicts)."""
    if not isinstance(ev, CallEvent):
        ev = CallEvent.from_wire(ev)
    wire, body = ev.wire, ev.json
    kind = wire["type"]
    event = (call_id, seq, kind, float(wire.get("t", 0.0)), body)
    if kind == "alert":
        return _EventRow(call_id, seq, event,
                         alert=(wire["id"], call_id, wire["rule"], wire["severity"], float(wire["t"]), body))
    if kind == "utterance":
        return _EventRow(call_id, seq, event, transcript=(call_id, wire["leg"], wire["start"], wire["end"],
                                                          wire["text"], wire.get("language")))
    if kind == "utterance_redacted":
        return _EventRow(call_id, seq, event, redaction=wire)
    return _EventRow(call_id, seq, event)


def _describe(name: str, arg: Any) -> str:
    """Which row, for a log line: the op and the call, never the row's content (transcripts are private)."""
    try:
        if name == "call":
            return f"call row of {arg['id']}"
        if name in ("events", "step"):
            return f"{name} of call {arg[0]}"
        if name == "recording":
            return f"recording of call {arg[0]}"
    except Exception:  # a row too malformed to name
        pass
    return f"{name!r} op"


def _first_line(e: BaseException) -> str:
    """An error in one line: the database's DETAIL lines may quote the row."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


class SqlStore:
    """The store's methods, for any database a subclass connects to. See the module docstring."""

    _db_now: str | None = None
    """SQL for the database's own clock (None: the worker's clock)."""
    _utterance_at = "json_extract(body, '$.leg') = ? AND json_extract(body, '$.start') = ?"
    """An utterance event's leg and start, in SQL."""
    _skip_locked = ""
    """What a locking read of the calls to close appends."""
    _returning_id = ""
    """What an ``INSERT`` appends to give the new row's id back, where the database needs that."""

    def __init__(self, *, worker_id: str | None = None, clock: Callable[[], float] | None = None) -> None:
        """``worker_id``: the worker whose calls this store writes (recorded as their owner while live).
        ``clock``: what "now" is, in Unix seconds, for heartbeats, orphaned calls and notes; None: the
        machine's clock, and on PostgreSQL the database's for heartbeats (workers are compared on one clock)."""
        self.worker_id = worker_id
        self.clock = clock

    # -- what a subclass provides --------------------------------------------------------------------------

    def q(self, sql: str) -> str:
        """``sql`` written with ``?`` placeholders, in this database's style."""
        return sql

    def _reading(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads, each its own statement."""
        raise NotImplementedError

    def _single(self) -> AbstractContextManager[Cursor]:
        """A cursor for writes, each statement committed on its own, by the connection writes use."""
        raise NotImplementedError

    def _transaction(self, *, batch: bool = False) -> AbstractContextManager[Cursor]:
        """A cursor in one write transaction, committed on leaving, rolled back on an error (``batch``: many
        statements whose replies nobody reads until the end)."""
        raise NotImplementedError

    def _savepoint(self, cur: Cursor) -> AbstractContextManager[None]:
        """Inside ``_transaction``: an error undoes what ran in this block only, then goes on up."""
        raise NotImplementedError

    def _inserted_id(self, cur: Cursor) -> int:
        """The id of the row that ``cur``'s last ``INSERT ...{_returning_id}`` made."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def migrate(self) -> int:
        raise NotImplementedError

    # -- the clock -----------------------------------------------------------------------------------------------

    def _now(self) -> float:
        return (self.clock or time.time)()

    def _now_sql(self) -> tuple[str, list[float]]:
        """"Now" for a statement: the database's clock where it has one and no clock was given, else a value."""
        if self.clock is None and self._db_now is not None:
            return self._db_now, []
        return "?", [self._now()]

    def _now_in(self, cur: Cursor) -> float:
        sql, args = self._now_sql()
        if not args:
            cur.execute(f"SELECT {sql}")
            return float(cur.fetchone()[0])
        return args[0]

    # -- writes (one transaction per batch) -------------------------------------------------------------

    def write(self, ops: Sequence[tuple[str, Any]]) -> int:
        """Apply a batch of ``(op, arg)`` in one transaction; returns how many rows were skipped.

        Ops: ``("call", call)`` (the call row, inserted or replaced), ``("step", (call_id, [(seq, event), ...],
        call or None))`` (what one analysis step produced), ``("events", (call_id, first_seq, [event, ...]))``
        and ``("recording", (call_id, path or None))``; events are ``CallEvent`` (or their wire dicts).

        A row that cannot be made (an event that fails to serialise, a malformed op) or that the database
        refuses (a constraint) is logged and skipped; the rest of the batch is written. An error that says the
        database is away (``transient``) writes nothing and goes up, for the writer to retry the batch.
        """
        units, skipped = self._units(ops)
        if not units:
            return skipped
        try:
            with self._transaction(batch=True) as cur:
                self._apply(cur, units)
            return skipped
        except Exception as e:
            if transient(e):
                raise
            log.warning("the database refused a batch of %d rows (%s); writing them one at a time",
                        len(units), _first_line(e))
        with self._transaction() as cur:
            for unit in units:
                try:
                    with self._savepoint(cur):
                        self._apply(cur, [unit], derive=False)
                except Exception as e:
                    if transient(e):
                        raise
                    skipped += 1
                    log.error("skipped a row the database refused (%s): %s", _unit_name(unit), _first_line(e))
            ended = _ended(units)
            if ended:
                try:
                    with self._savepoint(cur):
                        self._calls_ended(cur, ended)
                except Exception as e:
                    if transient(e):
                        raise
                    log.error("could not derive the metrics of %d ended calls: %s", len(ended), _first_line(e))
        return skipped

    def _units(self, ops: Sequence[tuple[str, Any]]) -> tuple[list[_Unit], int]:
        """The rows ``ops`` hold, each made once, and how many could not be made (each logged)."""
        units: list[_Unit] = []
        skipped = 0
        for name, arg in ops:
            try:
                if name == "call":
                    units.append(_call_row(arg, self.worker_id))
                    continue
                if name == "recording":
                    units.append(_RecordingRow(arg[0], arg[1]))
                    continue
                if name == "step":
                    call_id, events, call = arg
                    if call is not None:
                        units.append(_call_row(call, self.worker_id))
                elif name == "events":
                    call_id, first_seq, evs = arg
                    events = [(first_seq + i, ev) for i, ev in enumerate(evs)]
                else:
                    raise ValueError(f"unknown write op {name!r}")
            except Exception as e:
                skipped += 1
                log.error("skipped a row that could not be made (%s): %s", _describe(name, arg), _first_line(e))
                continue
            for seq, ev in events:
                try:
                    units.append(_event_row(call_id, seq, ev))
                except Exception as e:
                    skipped += 1
                    log.error("skipped event %s of call %s, which could not be made: %s", seq, call_id,
                              _first_line(e))
        return units, skipped

    def _apply(self, cur: Cursor, units: Sequence[_Unit], *, derive: bool = True) -> None:
        """Write ``units`` in order. Runs of events become one insert per table; only a redaction (which
        rewrites utterances stored before it) waits for the events ahead of it. ``derive``: then make the
        derived rows of the calls whose row says they ended (``_calls_ended``), from everything written."""
        events: list[_EventRow] = []
        for unit in units:
            if isinstance(unit, _EventRow):
                if unit.redaction is not None:
                    self._insert_events(cur, events)
                    events = []
                    self._insert_events(cur, [unit])
                    self._replace_utterance(cur, unit.call_id, unit.redaction)
                else:
                    events.append(unit)
            elif isinstance(unit, _CallRow):
                cur.execute(self.q(_CALL_UPSERT), unit.values)
            else:
                cur.execute(self.q("UPDATE calls SET recording = ? WHERE id = ?"), (unit.path, unit.call_id))
        self._insert_events(cur, events)
        ended = _ended(units) if derive else {}
        if ended:
            self._calls_ended(cur, ended)

    def _calls_ended(self, cur: Cursor, calls: dict[str, str | None]) -> None:
        """Calls (id: team from the call object, or None) whose row has just said they are over, with all their
        events written: the place for rows derived from a whole call (``coaching.CoachingStore``)."""

    def _line_redacted(self, cur: Cursor, call_id: str) -> None:
        """A stored transcript line of ``call_id`` got its redacted text (``_replace_utterance``)."""

    def _insert_events(self, cur: Cursor, rows: Sequence[_EventRow]) -> None:
        if not rows:
            return
        cur.executemany(self.q(_EVENT_UPSERT), [r.event for r in rows])
        alerts = [r.alert for r in rows if r.alert is not None]
        if alerts:
            cur.executemany(self.q(_ALERT_UPSERT), alerts)
        transcripts = [r.transcript for r in rows if r.transcript is not None]
        if transcripts:
            cur.executemany(self.q(_TRANSCRIPT_INSERT), transcripts)

    def _replace_utterance(self, cur: Cursor, call_id: str, redaction: Row) -> None:
        """An utterance already stored gets the text that replaces it (``utterance_redacted``)."""
        cur.execute(self.q(f"SELECT seq, body FROM events WHERE call_id = ? AND type = 'utterance' "
                           f"AND {self._utterance_at}"), (call_id, redaction["leg"], redaction["start"]))
        for seq, body in cur.fetchall():
            cur.execute(self.q("UPDATE events SET body = ? WHERE call_id = ? AND seq = ?"),
                        (json.dumps(replaced(json.loads(body), redaction)), call_id, seq))
        cur.execute(self.q("UPDATE transcripts SET text = ? WHERE call_id = ? AND leg = ? AND start = ?"),
                    (redaction["text"], call_id, redaction["leg"], redaction["start"]))
        self._line_redacted(cur, call_id)

    def claim_call(self, call: Row) -> str:
        """Store a new call's first row under an id no call has had: ``call["id"]`` itself, else the next of
        ``id~2``, ``id~3``, ... (see ``session_ids``). Returns the id. A reused id never touches the rows of
        the calls that had it before; ``CallLive`` if the latest of them is still live. Two workers claiming
        together both succeed, with different ids: the insert that loses the race sees the conflict and moves
        on to the next id."""
        values = _call_values(call, self.worker_id)
        latest: str | None = None
        with self._single() as cur:
            for call_id in session_ids(call["id"]):
                cur.execute(self.q("SELECT status FROM calls WHERE id = ?"), (call_id,))
                row = cur.fetchone()
                if row is not None:
                    latest = row[0]
                    continue
                if latest == "live":
                    raise CallLive(call["id"])
                values[0] = call_id
                cur.execute(self.q(_CALL_INSERT + "NOTHING"), values)
                if cur.rowcount == 1:
                    return call_id
                latest = "live"  # another worker has just taken it for a session that is starting
        raise CallLive(call["id"], "has had too many sessions")

    def add_note(self, call_id: str, author: str, text: str) -> Row:
        created = self._now()
        with self._single() as cur:
            cur.execute(self.q("INSERT INTO notes (call_id, author, text, created) VALUES (?, ?, ?, ?)"
                               + self._returning_id), (call_id, author, text, created))
            note_id = self._inserted_id(cur)
        return {"id": note_id, "call_id": call_id, "author": author, "text": text, "created": created}

    # -- workers ----------------------------------------------------------------------------------------

    def heartbeat(self, worker_id: str) -> None:
        """``worker_id`` is alive now."""
        now, args = self._now_sql()
        with self._single() as cur:
            cur.execute(self.q(f"INSERT INTO workers (id, started, last_seen) VALUES (?, {now}, {now}) "
                               "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen"),
                        [worker_id, *args, *args])

    def forget_worker(self, worker_id: str) -> None:
        """A clean shutdown: the worker's calls have ended, its row would only go stale."""
        with self._single() as cur:
            cur.execute(self.q("DELETE FROM workers WHERE id = ?"), (worker_id,))

    def worker_ids(self) -> list[str]:
        with self._reading() as cur:
            cur.execute("SELECT id FROM workers ORDER BY id")
            return [r[0] for r in cur.fetchall()]

    def close_orphaned_calls(self, worker_id: str, timeout_s: float, *, startup: bool = False) -> list[Row]:
        """Close, as interrupted, the live calls whose worker died (see ORPHANED); returns them as closed.

        Each gets a ``call_ended`` event after its last one, so its stored timeline ends like any call's.
        Workers not heard from within the timeout are forgotten. Workers sweep at the same time: a row another
        one is closing (or its owner is writing) is skipped, and one already closed no longer matches, so each
        call is closed once.
        """
        with self._transaction() as cur:
            cutoff = self._now_in(cur) - timeout_s
            cur.execute(self.q(f"{_CALL_SELECT} WHERE {ORPHANED}{self._skip_locked}"),
                        (worker_id, cutoff, startup, worker_id))
            rows = cur.fetchall()
            closed = []
            for r in rows:
                call_id = r[0]
                cur.execute(self.q("SELECT MAX(t), MAX(seq) FROM events WHERE call_id = ?"), (call_id,))
                last_t, last_seq = cur.fetchone()
                call = interrupted(self._call_row(r), last_t)
                cur.execute(self.q("UPDATE calls SET status = ?, duration = ?, ended = ? WHERE id = ?"),
                            (call["status"], call["duration"], call["ended"], call_id))
                ended = CallEvent(call_id, CallChanged("call_ended", call["duration"], call))
                cur.execute(self.q("INSERT INTO events (call_id, seq, type, t, body) VALUES (?, ?, ?, ?, ?) "
                                   "ON CONFLICT (call_id, seq) DO NOTHING"),
                            (call_id, 0 if last_seq is None else last_seq + 1, ended.type, ended.t, ended.json))
                closed.append(call)
            if closed:
                self._calls_ended(cur, {c["id"]: None for c in closed})
            if startup:
                cur.execute(self.q("DELETE FROM workers WHERE last_seen < ? OR id = ?"), (cutoff, worker_id))
            else:
                cur.execute(self.q("DELETE FROM workers WHERE last_seen < ?"), (cutoff,))
        return closed

    # -- reads --------------------------------------------------------------------------------------------

    @staticmethod
    def _call_row(row: Sequence[Any]) -> Row:
        call = dict(zip(CALL_COLUMNS, row, strict=True))
        call["flags"] = json.loads(call["flags"])
        call["counts"] = json.loads(call["counts"])
        call["flagged"] = bool(call["flagged"])
        return call

    def get_call(self, call_id: str) -> Row | None:
        with self._reading() as cur:
            cur.execute(self.q(_CALL_SELECT + " WHERE id = ?"), (call_id,))
            row = cur.fetchone()
        return None if row is None else self._call_row(row)

    def list_calls(self, *, status: str | None = None, flagged: bool | None = None, agent_id: str | None = None,
                   agent_ids: Sequence[str] | None = None, limit: int = 100, offset: int = 0) -> list[Row]:
        """Calls, newest first; ``agent_ids``: only these agents' (a supervisor scoped to teams; empty: none)."""
        where: list[str] = []
        args: list[object] = []
        if agent_ids is not None:
            if not agent_ids:
                return []
            where.append(f"agent_id IN ({', '.join('?' * len(agent_ids))})")
            args += list(agent_ids)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if flagged is not None:
            where.append("flagged = ?")
            args.append(bool(flagged))
        if agent_id is not None:
            where.append("agent_id = ?")
            args.append(agent_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._reading() as cur:
            cur.execute(self.q(_CALL_SELECT + clause + " ORDER BY started DESC LIMIT ? OFFSET ?"),
                        [*args, limit, offset])
            rows = cur.fetchall()
        return [self._call_row(r) for r in rows]

    def events(self, call_id: str, types: Iterable[str] | None = None, since: float | None = None,
               limit: int = 10000) -> list[Row]:
        sql = "SELECT body FROM events WHERE call_id = ?"
        args: list[object] = [call_id]
        wanted = list(types or [])
        if wanted:
            sql += f" AND type IN ({', '.join('?' * len(wanted))})"
            args += wanted
        if since is not None:
            sql += " AND t >= ?"
            args.append(since)
        with self._reading() as cur:
            cur.execute(self.q(sql + " ORDER BY seq LIMIT ?"), [*args, limit])
            rows = cur.fetchall()
        return [json.loads(r[0]) for r in rows]

    def transcript(self, call_id: str) -> list[Row]:
        with self._reading() as cur:
            cur.execute(self.q('SELECT leg, start, "end", text, language FROM transcripts '
                               "WHERE call_id = ? ORDER BY start"), (call_id,))
            rows = cur.fetchall()
        return [dict(zip(("leg", "start", "end", "text", "language"), r, strict=True)) for r in rows]

    def notes(self, call_id: str) -> list[Row]:
        with self._reading() as cur:
            cur.execute(self.q("SELECT id, author, text, created, t FROM notes WHERE call_id = ? ORDER BY id"),
                        (call_id,))
            rows = cur.fetchall()
        return [dict(zip(("id", "author", "text", "created", "t"), r, strict=True)) for r in rows]

    def expired_recordings(self, before: float) -> list[tuple[str, str]]:
        with self._reading() as cur:
            cur.execute(self.q("SELECT id, recording FROM calls WHERE recording IS NOT NULL "
                               "AND ended IS NOT NULL AND ended < ?"), (before,))
            rows = cur.fetchall()
        return [(r[0], r[1]) for r in rows]


def _ended(units: Sequence[_Unit]) -> dict[str, str | None]:
    """The calls whose row in ``units`` says they are over, with the team their call object named."""
    return {u.values[0]: u.team for u in units if isinstance(u, _CallRow) and u.ended}


def _unit_name(unit: _Unit) -> str:
    if isinstance(unit, _CallRow):
        return f"call row of {unit.values[0]}"
    if isinstance(unit, _EventRow):
        return f"event {unit.seq} of call {unit.call_id}"
    return f"recording of call {unit.call_id}"
