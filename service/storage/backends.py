"""Pick the store for a database URL: SQLite for one machine, PostgreSQL when several workers share one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from service.storage.sqlite import Store

SCHEMES = ("sqlite:///", "postgresql://", "postgres://")


class UnsupportedDatabase(ValueError):
    """The URL names no database callwatch can use; the message says which ones it can."""


class CallStore(Protocol):
    """What the service needs from a store; ``Store`` and ``PgStore`` both provide it (``sql.SqlStore``)."""

    def close(self) -> None: ...
    def migrate(self) -> int: ...
    def write(self, ops: Sequence[tuple[str, Any]]) -> int: ...
    def claim_call(self, call: dict[str, Any]) -> str: ...
    def add_note(self, call_id: str, author: str, text: str) -> dict[str, Any]: ...
    def heartbeat(self, worker_id: str) -> None: ...
    def forget_worker(self, worker_id: str) -> None: ...
    def worker_ids(self) -> list[str]: ...
    def close_orphaned_calls(self, worker_id: str, timeout_s: float, *,
                             startup: bool = False) -> list[dict[str, Any]]: ...
    def get_call(self, call_id: str) -> dict[str, Any] | None: ...
    def list_calls(self, *, status: str | None = None, flagged: bool | None = None, agent_id: str | None = None,
                   agent_ids: Sequence[str] | None = None, limit: int = 100,
                   offset: int = 0) -> list[dict[str, Any]]: ...
    def events(self, call_id: str, types: Iterable[str] | None = None, since: float | None = None,
               limit: int = 10000) -> list[dict[str, Any]]: ...
    def transcript(self, call_id: str) -> list[dict[str, Any]]: ...
    def notes(self, call_id: str) -> list[dict[str, Any]]: ...
    def expired_recordings(self, before: float) -> list[tuple[str, str]]: ...


def open_store(url: str, *, worker_id: str | None = None, clock: Callable[[], float] | None = None) -> CallStore:
    """Open (and migrate) the store for ``url``: ``sqlite:///PATH`` or ``postgresql://user:pass@host/db``.

    ``worker_id`` is recorded as the owner of the calls this store writes (None: no owner, as before).
    ``clock``: "now" in Unix seconds for heartbeats, orphaned calls and notes (None: the machine's clock, and
    on PostgreSQL the database's for heartbeats and orphans); tests pass a fake one.
    """
    if url.startswith("sqlite:///"):
        return Store(url, worker_id=worker_id, clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here so that a SQLite-only installation never loads the PostgreSQL driver.
        from service.storage.postgres import PgStore

        return PgStore(url, worker_id=worker_id, clock=clock)
    shown = url.split("@")[-1] if "@" in url else url  # never echo a password into logs
    raise UnsupportedDatabase(f"unsupported database URL {shown!r}: use sqlite:///PATH or "
                              "postgresql://USER:PASSWORD@HOST:PORT/DATABASE")


def migrate(url: str) -> int:
    """Bring the database at ``url`` to the latest schema; returns the schema version. For ``callwatch migrate``."""
    store = open_store(url)
    try:
        return store.migrate()
    finally:
        store.close()
