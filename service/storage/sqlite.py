"""The data layer: calls, events, redacted transcripts, alerts, notes. SQLite now, behind one small class.

Everything here is blocking; the service calls it through ``asyncio.to_thread`` (reads) or the single
writer task in ``service.storage.writer`` (writes), never from the event loop. The schema moves forward by the
numbered migrations below, so a PostgreSQL implementation of the same methods can follow the same steps.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from service.analysis.redaction import replaced

Row = dict[str, Any]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calls (
        id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, source TEXT NOT NULL, language TEXT NOT NULL,
        started REAL NOT NULL, ended REAL, status TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0,
        escalation_score INTEGER NOT NULL DEFAULT 0, flagged INTEGER NOT NULL DEFAULT 0,
        flags TEXT NOT NULL DEFAULT '[]', counts TEXT NOT NULL DEFAULT '{}', recording TEXT);
    CREATE INDEX calls_agent ON calls (agent_id, started);
    CREATE TABLE events (
        call_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, t REAL NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (call_id, seq));
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY, call_id TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL,
        t REAL NOT NULL, body TEXT NOT NULL);
    CREATE INDEX alerts_call ON alerts (call_id, t);
    CREATE TABLE transcripts (
        call_id TEXT NOT NULL, leg TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
        text TEXT NOT NULL, language TEXT);
    CREATE INDEX transcripts_call ON transcripts (call_id, start);
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL, author TEXT NOT NULL,
        text TEXT NOT NULL, created REAL NOT NULL);
    """,
    # 2: which worker follows a live call, and when each worker was last heard from (see ORPHANED).
    # Calls stored before this have no worker: a worker starting up closes those, as every start did before.
    """
    ALTER TABLE calls ADD COLUMN worker TEXT;
    CREATE TABLE workers (id TEXT PRIMARY KEY, started REAL NOT NULL, last_seen REAL NOT NULL);
    CREATE INDEX calls_live ON calls (worker) WHERE status = 'live';
    """,
)

CALL_COLUMNS = ("id", "agent_id", "source", "language", "started", "ended", "status", "duration",
                "escalation_score", "flagged", "flags", "counts", "recording")

# Live calls nobody follows any more, as seen by worker :me at :now. Periodically: calls of workers whose
# heartbeat is older than the timeout (or gone). On start also the worker's own calls (left by its previous
# run under the same id) and calls from before workers were recorded. Same text for both backends.
ORPHANED = ("status = 'live' AND (worker IS NOT NULL AND worker <> {me} AND worker NOT IN "
            "(SELECT id FROM workers WHERE last_seen >= {cutoff}) OR {startup} AND (worker IS NULL OR worker = {me}))")


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


def _call_values(call: Row) -> list[Any]:
    values = [call.get(c) for c in CALL_COLUMNS]
    values[CALL_COLUMNS.index("flags")] = json.dumps(call.get("flags", []))
    values[CALL_COLUMNS.index("counts")] = json.dumps(call.get("counts", {}))
    values[CALL_COLUMNS.index("flagged")] = int(bool(call.get("flagged")))
    return values


def interrupted(call: Row, last_t: float | None) -> Row:
    """A call cut off by a crash, closed with what was received: it lasted until its last stored event."""
    duration = round(max(float(call["duration"] or 0.0), float(last_t or 0.0)), 3)
    return {**call, "status": "interrupted", "duration": duration,
            "ended": call["ended"] if call["ended"] is not None else call["started"] + duration}


class Store:
    def __init__(self, url: str, *, worker_id: str | None = None) -> None:
        """``worker_id``: the worker whose calls this store writes (recorded as their owner while live)."""
        self.worker_id = worker_id
        if not url.startswith("sqlite:///"):
            raise ValueError(f"unsupported database URL {url!r}")
        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # text a redaction replaces is overwritten, not left free
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def migrate(self) -> int:
        with self._lock:
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                self._db.executescript(f"BEGIN; {script}; INSERT INTO schema_version VALUES ({version}); COMMIT;")
            return len(MIGRATIONS)

    # -- writes (one transaction per batch) -------------------------------------------------------------

    def write(self, ops: Sequence[tuple[str, Any]]) -> None:
        """Apply a batch of ``(op, arg)`` in one transaction; ops are the ``_op_*`` methods' suffixes.

        Runs of ``events`` ops (one per live event, hundreds a second under load) become one insert per
        table, in order with the ops around them."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                pending: list[tuple[str, int, list[Row]]] = []
                for name, arg in ops:
                    if name == "events":
                        pending.append(arg)
                        continue
                    self._insert_events(pending)
                    pending = []
                    getattr(self, "_op_" + name)(arg)
                self._insert_events(pending)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _op_call(self, call: Row) -> None:
        values = _call_values(call)
        self._db.execute(f"INSERT OR REPLACE INTO calls ({', '.join(CALL_COLUMNS)}, worker) "
                         f"VALUES ({', '.join('?' * len(CALL_COLUMNS))}, ?)", [*values, self.worker_id])


    def _insert_events(self, batches: Sequence[tuple[str, int, list[Row]]]) -> None:
        rows, alerts, transcripts = [], [], []
        redactions: list[tuple[str, Row]] = []
        for call_id, first_seq, events in batches:
            for i, ev in enumerate(events):
                body = json.dumps(ev)
                kind = ev["type"]
                rows.append((call_id, first_seq + i, kind, float(ev.get("t", 0.0)), body))
                if kind == "alert":
                    alerts.append((ev["id"], call_id, ev["rule"], ev["severity"], float(ev["t"]), body))
                elif kind == "utterance":
                    transcripts.append((call_id, ev["leg"], ev["start"], ev["end"], ev["text"], ev.get("language")))
                elif kind == "utterance_redacted":
                    redactions.append((call_id, ev))
        if rows:
            self._db.executemany(
                "INSERT OR REPLACE INTO events (call_id, seq, type, t, body) VALUES (?, ?, ?, ?, ?)", rows)
        if alerts:
            self._db.executemany(
                "INSERT OR REPLACE INTO alerts (id, call_id, rule, severity, t, body) VALUES (?, ?, ?, ?, ?, ?)",
                alerts)
        if transcripts:
            self._db.executemany(
                'INSERT INTO transcripts (call_id, leg, start, "end", text, language) VALUES (?, ?, ?, ?, ?, ?)',
                transcripts)
        for call_id, ev in redactions:
            self._replace_utterance(call_id, ev)

    def _replace_utterance(self, call_id: str, redaction: Row) -> None:
        """An utterance already stored gets the text that replaces it (``utterance_redacted``)."""
        found = self._db.execute(
            "SELECT seq, body FROM events WHERE call_id = ? AND type = 'utterance' "
            "AND json_extract(body, '$.leg') = ? AND json_extract(body, '$.start') = ?",
            (call_id, redaction["leg"], redaction["start"])).fetchall()
        for seq, body in found:
            self._db.execute("UPDATE events SET body = ? WHERE call_id = ? AND seq = ?",
                             (json.dumps(replaced(json.loads(body), redaction)), call_id, seq))
        self._db.execute("UPDATE transcripts SET text = ? WHERE call_id = ? AND leg = ? AND start = ?",
                         (redaction["text"], call_id, redaction["leg"], redaction["start"]))

    def _op_recording(self, arg: tuple[str, str | None]) -> None:
        self._db.execute("UPDATE calls SET recording = ? WHERE id = ?", (arg[1], arg[0]))

    def claim_call(self, call: Row) -> str:
        """Store a new call's first row under an id no call has had: ``call["id"]`` itself, else the next of
        ``id~2``, ``id~3``, ... (see ``session_ids``). Returns the id. A reused id never touches the rows of
        the calls that had it before; ``CallLive`` if the latest of them is still live."""
        values = _call_values(call)
        with self._lock:
            latest: str | None = None
            for call_id in session_ids(call["id"]):
                row = self._db.execute("SELECT status FROM calls WHERE id = ?", (call_id,)).fetchone()
                if row is None:
                    if latest == "live":
                        raise CallLive(call["id"])
                    values[0] = call_id
                    self._db.execute(f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}, worker) "
                                     f"VALUES ({', '.join('?' * len(CALL_COLUMNS))}, ?)", [*values, self.worker_id])
                    return call_id
                latest = row[0]
        raise CallLive(call["id"], "has had too many sessions")

    def add_note(self, call_id: str, author: str, text: str) -> Row:
        with self._lock:
            created = time.time()
            cur = self._db.execute("INSERT INTO notes (call_id, author, text, created) VALUES (?, ?, ?, ?)",
                                   (call_id, author, text, created))
            return {"id": cur.lastrowid, "call_id": call_id, "author": author, "text": text, "created": created}

    # -- workers ----------------------------------------------------------------------------------------

    def heartbeat(self, worker_id: str) -> None:
        """``worker_id`` is alive now."""
        with self._lock:
            now = time.time()
            self._db.execute("INSERT INTO workers (id, started, last_seen) VALUES (?, ?, ?) "
                             "ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen", (worker_id, now, now))

    def forget_worker(self, worker_id: str) -> None:
        """A clean shutdown: the worker's calls have ended, its row would only go stale."""
        with self._lock:
            self._db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def worker_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM workers ORDER BY id").fetchall()]

    def close_orphaned_calls(self, worker_id: str, timeout_s: float, *, startup: bool = False) -> list[Row]:
        """Close, as interrupted, the live calls whose worker died (see ORPHANED); returns them as closed.

        Each gets a ``call_ended`` event after its last one, so its stored timeline ends like any call's.
        Workers not heard from within the timeout are forgotten.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                where = ORPHANED.format(me=":me", startup=":startup", cutoff=":cutoff")
                rows = self._db.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE {where}",
                                        {"me": worker_id, "startup": int(startup), "cutoff": now - timeout_s}
                                        ).fetchall()
                closed = []
                for row in rows:
                    call_id = row[0]
                    last_t, last_seq = self._db.execute("SELECT MAX(t), MAX(seq) FROM events WHERE call_id = ?",
                                                        (call_id,)).fetchone()
                    call = interrupted(self._call_row(row), last_t)
                    self._db.execute("UPDATE calls SET status = ?, duration = ?, ended = ? WHERE id = ?",
                                     (call["status"], call["duration"], call["ended"], call_id))
                    ev = {"type": "call_ended", "call_id": call_id, "t": call["duration"], "call": call}
                    self._db.execute("INSERT OR REPLACE INTO events (call_id, seq, type, t, body) "
                                     "VALUES (?, ?, ?, ?, ?)",
                                     (call_id, 0 if last_seq is None else last_seq + 1, ev["type"], ev["t"],
                                      json.dumps(ev)))
                    closed.append(call)
                self._db.execute("DELETE FROM workers WHERE last_seen < ?" + (" OR id = ?" if startup else ""),
                                 (now - timeout_s, worker_id) if startup else (now - timeout_s,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return closed

    # -- reads --------------------------------------------------------------------------------------------

    def _call_row(self, row: Sequence[Any]) -> Row:
        call = dict(zip(CALL_COLUMNS, row, strict=True))
        call["flags"] = json.loads(call["flags"])
        call["counts"] = json.loads(call["counts"])
        call["flagged"] = bool(call["flagged"])
        return call

    def get_call(self, call_id: str) -> Row | None:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE id = ?",
                                   (call_id,)).fetchone()
        return None if row is None else self._call_row(row)

    def list_calls(self, *, status: str | None = None, flagged: bool | None = None, agent_id: str | None = None,
                   limit: int = 100, offset: int = 0) -> list[Row]:
        where: list[str] = []
        args: list[object] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if flagged is not None:
            where.append("flagged = ?")
            args.append(int(flagged))
        if agent_id is not None:
            where.append("agent_id = ?")
            args.append(agent_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls {clause} "
                                    "ORDER BY started DESC LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
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
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [json.loads(r[0]) for r in rows]

    def transcript(self, call_id: str) -> list[Row]:
        with self._lock:
            rows = self._db.execute('SELECT leg, start, "end", text, language FROM transcripts '
                                    "WHERE call_id = ? ORDER BY start", (call_id,)).fetchall()
        return [dict(zip(("leg", "start", "end", "text", "language"), r, strict=True)) for r in rows]

    def notes(self, call_id: str) -> list[Row]:
        with self._lock:
            rows = self._db.execute("SELECT id, author, text, created FROM notes WHERE call_id = ? ORDER BY id",
                                    (call_id,)).fetchall()
        return [dict(zip(("id", "author", "text", "created"), r, strict=True)) for r in rows]

    def expired_recordings(self, before: float) -> list[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, recording FROM calls WHERE recording IS NOT NULL "
                                    "AND ended IS NOT NULL AND ended < ?", (before,)).fetchall()
        return [(r[0], r[1]) for r in rows]
