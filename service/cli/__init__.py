"""The ``callwatch`` console script: one subcommand per module, each with ``add_arguments`` and ``run``. The
outer edge: may import every other package."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "serve": ("service.cli.serve", "run the live service (ingest, analysis, alerts, storage, web pages)"),
    "analyze": ("service.cli.analyze", "analyze a recorded call; JSON events on stdout"),
    "replay": ("service.cli.replay", "stream a recorded call to a running service, as a live call"),
    "token": ("service.cli.tokens", "print a signed access token"),
    "migrate": ("service.cli.migrate", "bring the database schema up to date and exit"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callwatch", description="Live call coaching for contact centers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a command this installation does not ship
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
