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
from typing import Any

from service.storage.coaching import CoachingStore
from service.storage.fulltext import fts5_query, indexed
from service.storage.sql import (
    CALL_COLUMNS,
    MAX_SESSIONS,
    ORPHANED,
    CallLive,
    Cursor,
    Row,
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
    # 3: coaching across calls (service.storage.coaching, docs/coaching.md). Teams; per-call metrics derived when
    # a call ends, with its review state; notes at a moment and their acknowledgement; incidents; the full-text
    # index of the redacted transcript lines (their stems, see service.storage.fulltext; rowid = transcripts').
    """
    CREATE TABLE agent_teams (agent_id TEXT PRIMARY KEY, team TEXT NOT NULL, source TEXT NOT NULL,
                              updated REAL NOT NULL);
    CREATE INDEX agent_teams_team ON agent_teams (team, agent_id);
    CREATE TABLE call_metrics (
        call_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, language TEXT NOT NULL, lang TEXT NOT NULL,
        started REAL NOT NULL, ended REAL, day INTEGER NOT NULL, duration REAL NOT NULL, status TEXT NOT NULL,
        escalation_score INTEGER NOT NULL, flagged INTEGER NOT NULL,
        agent_talk_s REAL NOT NULL, customer_talk_s REAL NOT NULL, interruptions INTEGER NOT NULL,
        dead_air INTEGER NOT NULL, dead_air_s REAL NOT NULL, monologues INTEGER NOT NULL, fast_speech INTEGER NOT NULL,
        voice_rising INTEGER NOT NULL, escalations INTEGER NOT NULL, answered INTEGER NOT NULL,
        raised_after INTEGER NOT NULL, alerts INTEGER NOT NULL,
        review TEXT NOT NULL DEFAULT 'new', review_updated REAL, reviewed_by TEXT);
    -- covering: a scorecard's GROUP BY reads this index only, never the table
    CREATE INDEX call_metrics_agent ON call_metrics (agent_id, started, day, call_id, flagged, agent_talk_s,
        customer_talk_s, interruptions, dead_air, dead_air_s, monologues, fast_speech, voice_rising, escalations,
        answered, raised_after, alerts);
    CREATE INDEX call_metrics_agent_queue ON call_metrics (agent_id, flagged, review, started);
    CREATE INDEX call_metrics_started ON call_metrics (started, call_id);
    CREATE INDEX call_metrics_queue ON call_metrics (flagged, review, started);
    CREATE INDEX alerts_rule ON alerts (rule, call_id);
    ALTER TABLE notes ADD COLUMN t REAL;
    ALTER TABLE notes ADD COLUMN acknowledged_at REAL;
    CREATE INDEX notes_call ON notes (call_id, id);
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT, agent_id TEXT NOT NULL, t REAL, category TEXT NOT NULL,
        severity TEXT NOT NULL, what_happened TEXT NOT NULL, outcome TEXT NOT NULL, follow_up TEXT NOT NULL,
        author TEXT NOT NULL, created REAL NOT NULL);
    CREATE INDEX incidents_created ON incidents (created);
    CREATE INDEX incidents_call ON incidents (call_id);
    CREATE VIRTUAL TABLE transcript_fts USING fts5 (terms, tokenize = 'porter unicode61 remove_diacritics 2');
    """,
)


COACHING_VERSION = 3
FEW_LINES = 20000
"""Up to this many matching transcript lines, search finds their calls first (see ``Store._call_match``)."""
"""The migration that made ``call_metrics``: calls that ended before it get their rows once it has run."""


class Store(CoachingStore):
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
        if current < COACHING_VERSION <= len(MIGRATIONS):
            self.derive_missing()
        return len(MIGRATIONS)

    # -- full text: FTS5 rows of each line's terms, rowid = the line's rowid in transcripts (not aliased by a
    # column, so a VACUUM could renumber them: callwatch never runs one, and neither should an operator).

    def _line_match(self, q: str) -> tuple[str, list[Any]] | None:
        # One line's probe: FTS5 seeks the line's rowid in the match's doclists (no set of every match is built).
        match = fts5_query(q)
        if match is None:
            return None
        return "EXISTS (SELECT 1 FROM transcript_fts f WHERE f.rowid = t.rowid AND f.terms MATCH ?)", [match]

    def _call_match(self, cur: Cursor, q: str) -> tuple[str, list[Any]] | None:
        # SQLite's planner cannot weigh a full-text match: we do. Few matching lines: the set of their calls first
        # (SQLite builds it once). Many: walk the calls in the requested order, each checked against the matched
        # lines, and stop at the page's end.
        match = fts5_query(q)
        if match is None:
            return None
        cur.execute("SELECT COUNT(*) FROM transcript_fts WHERE transcript_fts MATCH ?", (match,))
        if int(cur.fetchone()[0]) <= FEW_LINES:
            return ("m.call_id IN (SELECT t.call_id FROM transcripts t WHERE t.rowid IN "
                    "(SELECT rowid FROM transcript_fts WHERE transcript_fts MATCH ?))", [match])
        return super()._call_match(cur, q)

    def _index_lines(self, cur: Cursor, call_id: str) -> None:
        self._unindex_lines(cur, call_id)
        cur.execute("SELECT rowid, text FROM transcripts WHERE call_id = ?", (call_id,))
        cur.executemany("INSERT INTO transcript_fts (rowid, terms) VALUES (?, ?)",
                        [(rowid, indexed(text)) for rowid, text in cur.fetchall()])

    def _unindex_lines(self, cur: Cursor, call_id: str) -> None:
        cur.execute("DELETE FROM transcript_fts WHERE rowid IN (SELECT rowid FROM transcripts WHERE call_id = ?)",
                    (call_id,))

    def _purge_index(self, cur: Cursor) -> None:
        # FTS5 keeps a deleted row's terms in its index segments until they are merged (SQLite 3.40 has no
        # secure-delete option): merging them all drops the erased words; secure_delete zeroes the pages freed.
        cur.execute("INSERT INTO transcript_fts (transcript_fts) VALUES ('optimize')")

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
