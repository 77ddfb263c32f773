"""``callwatch token``: print a signed access token for the configured (or persisted) secret."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service.core import auth
from service.core.settings import SettingsError, load


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, choices=auth.ROLES)
    p.add_argument("--agent-id", help="required for --role agent: whose calls the token sees")
    p.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default 12 hours)")
    p.add_argument("--data-dir", type=Path, help="where the persisted secret lives (default ./var)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = auth.ensure_secret(load(os.environ, data_dir=args.data_dir))
        print(auth.issue(settings.secret, args.role, args.agent_id, ttl_s=args.ttl or settings.token_ttl_s))
    except (SettingsError, ValueError) as e:
        print(f"callwatch token: {e}", file=sys.stderr)
        return 2
    return 0
