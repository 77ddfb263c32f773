"""``callwatch token``: print a signed access token for the configured (or persisted) secret."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service.core import auth
from service.core.settings import SettingsError, load

MAX_TEAM = 100
"""As ``PUT /v1/agents/{agent_id}/team`` takes them."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, choices=auth.ROLES)
    p.add_argument("--agent-id", help="required for --role agent: whose calls the token sees")
    p.add_argument("--teams", help="for --role supervisor: scope the token to these teams' agents (comma-separated, "
                                  "e.g. north,south); without it a supervisor sees every agent")
    p.add_argument("--ttl", type=int, default=None, help="lifetime in seconds (default 12 hours)")
    p.add_argument("--data-dir", type=Path, help="where the persisted secret lives (default ./var)")


def parse_teams(raw: str | None, role: str) -> tuple[str, ...] | None:
    """``--teams a,b`` as the token's ``teams`` claim; None without the option."""
    if raw is None:
        return None
    if role != "supervisor":
        raise ValueError("--teams scopes supervisor tokens only")
    teams = tuple(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    if not teams:
        raise ValueError("--teams needs at least one team name")
    if any(len(t) > MAX_TEAM for t in teams):
        raise ValueError(f"a team name is at most {MAX_TEAM} characters")
    return teams


def run(args: argparse.Namespace) -> int:
    try:
        teams = parse_teams(args.teams, args.role)
        settings = auth.ensure_secret(load(os.environ, data_dir=args.data_dir))
        print(auth.issue(settings.secret, args.role, args.agent_id, ttl_s=args.ttl or settings.token_ttl_s,
                         teams=teams))
    except (SettingsError, ValueError) as e:
        print(f"callwatch token: {e}", file=sys.stderr)
        return 2
    return 0
