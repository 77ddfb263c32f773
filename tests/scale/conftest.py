"""Fixtures that start real PostgreSQL and Redis servers, skipping with the reason when they are not installed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale.servers import PostgresServer, RedisServer, pg_missing, redis_missing

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One cluster for the session (initdb is the slow part); each test gets its own database in it."""
    reason = pg_missing()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    import psycopg

    name = f"test_{next(_databases)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.url(name)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh server per test: it starts in milliseconds, and the restart test kills its own."""
    reason = redis_missing()
    if reason:
        pytest.skip(reason)
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same behaviour checks run over both backends, through ``open_store``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'callwatch.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
