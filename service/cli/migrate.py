"""``callwatch migrate``: bring the database schema up to date, then exit.

Workers migrate on start too (safely at once, on PostgreSQL); this is for deploys that migrate as a separate
step before rolling the workers, and for checking a database URL works.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from service.core.settings import Settings
from service.storage.backends import migrate


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", dest="db_url", metavar="URL", help="sqlite:///PATH or postgresql://USER:PASS@HOST/DB "
                   "(default: CALLWATCH_DB, else the sqlite file in the data dir)")
    p.add_argument("--data-dir", type=Path, help="data dir of the default sqlite file (CALLWATCH_DATA_DIR)")


def database_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    if args.db_url:
        return str(args.db_url)
    if env.get("CALLWATCH_DB"):
        return env["CALLWATCH_DB"]
    data_dir = args.data_dir or Path(env.get("CALLWATCH_DATA_DIR", "var"))
    return Settings(data_dir=data_dir).database_url


def run(args: argparse.Namespace) -> int:
    url = database_url(args, os.environ)
    try:
        version = migrate(url)
    except Exception as e:  # one line for the operator, not a traceback
        print(f"callwatch migrate: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"schema at version {version}")
    return 0
