"""``callwatch migrate`` on both backends, and a clear one-line failure for a bad URL."""

from __future__ import annotations

import argparse

import pytest

from service.cli import migrate as migrate_cmd
from service.storage.backends import open_store
from service.storage.sqlite import MIGRATIONS


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    migrate_cmd.add_arguments(p)
    return p.parse_args(argv)


def test_migrate_brings_an_empty_database_up_to_date_twice(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_cmd.run(parse("--db", store_url)) == 0
    assert migrate_cmd.run(parse("--db", store_url)) == 0
    assert capsys.readouterr().out == f"schema at version {len(MIGRATIONS)}\n" * 2
    store = open_store(store_url)
    try:
        assert store.list_calls() == []
    finally:
        store.close()


def test_a_bad_url_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_cmd.run(parse("--db", "mysql://root:pw@db/x")) == 1
    err = capsys.readouterr().err
    assert err.startswith("callwatch migrate: UnsupportedDatabase: unsupported database URL 'db/x'")
    assert err.count("\n") == 1
