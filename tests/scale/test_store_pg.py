"""What only the PostgreSQL store has to get right: workers migrating at once, and a database that restarts."""

from __future__ import annotations

import threading

import psycopg
import pytest

from service.storage.postgres import PgStore
from service.storage.sqlite import MIGRATIONS
from tests.scale.servers import PostgresServer


def test_workers_starting_together_migrate_once(pg_url: str) -> None:
    stores: list[PgStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(PgStore(pg_url))
        except BaseException as e:  # collected and asserted below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert errors == []
        assert len(stores) == 3
        with psycopg.connect(pg_url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for s in stores:
            s.close()


def test_the_store_reconnects_after_the_database_restarts(postgres: PostgresServer, pg_url: str) -> None:
    store = PgStore(pg_url)
    try:
        store.write([("call", {"id": "c1", "agent_id": "a1", "source": "native", "language": "en",
                               "started": 1.0, "ended": 2.0, "status": "completed", "duration": 1.0,
                               "escalation_score": 0, "flagged": False, "flags": [], "counts": {},
                               "recording": None})])
        assert store.get_call("c1") is not None
        postgres.stop()
        postgres.start()
        # The first use of each old connection finds it broken and fails, as any database error would...
        with pytest.raises(psycopg.OperationalError):
            store.get_call("c1")
        # ...and the next one opens a new connection.
        got = store.get_call("c1")
        assert got is not None and got["status"] == "completed"
        with pytest.raises(psycopg.OperationalError):
            store.add_note("c1", "sup", "lost")
        assert store.add_note("c1", "sup", "kept")["text"] == "kept"
        assert [n["text"] for n in store.notes("c1")] == ["kept"]
    finally:
        store.close()
