"""The store on SQLite, one machine's database: the queries are ``service.storage.sql``'s; this is the connection.

One connection behind a lock, in autocommit mode with explicit transactions; a write transaction takes the
database's write lock at once (``BEGIN IMMEDIATE``), so an orphan sweep never reads calls another process is
about to change. The schema moves forward by the numbered migrations below, step for step with PostgreSQL's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.storage.sql import (
    CALL_COLUMNS,
    MAX_SESSIONS,
    ORPHANED,
    CallLive,
    Cursor,
    Row,
    SqlStore,
    interrupted,
    previous_session,
    session_ids,
)

__all__ = ["CALL_COLUMNS", "MAX_SESSIONS", "MIGRATIONS", "ORPHANED", "CallLive", "Row", "Store", "interrupted",
           "previous_session", "session_ids"]

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


class Store(SqlStore):
    def __init__(self, url: str, *, worker_id: str | None = None, clock: Callable[[], float] | None = None) -> None:
        """``worker_id``: the worker whose calls this store writes (recorded as their owner while live).
        ``clock``: "now" in Unix seconds (None: the machine's clock); see ``SqlStore``."""
        super().__init__(worker_id=worker_id, clock=clock)
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

    @contextmanager
    def _reading(self) -> Iterator[Cursor]:
        with self._lock:
            yield self._db.cursor()

    _single = _reading

    @contextmanager
    def _transaction(self, *, batch: bool = False) -> Iterator[Cursor]:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                self._db.rollback()
                raise

    @contextmanager
    def _savepoint(self, cur: Cursor) -> Iterator[None]:
        cur.execute("SAVEPOINT row")
        try:
            yield
        except BaseException:
            cur.execute("ROLLBACK TO row")
            cur.execute("RELEASE row")
            raise
        cur.execute("RELEASE row")

    def _inserted_id(self, cur: Cursor) -> int:
        assert isinstance(cur, sqlite3.Cursor) and cur.lastrowid is not None
        return cur.lastrowid
