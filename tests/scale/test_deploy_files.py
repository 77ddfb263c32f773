"""The container files agree with each other (they cannot be built here: no Docker daemon)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_the_load_balancer_sends_to_every_replica_of_the_compose_workers() -> None:
    services = compose()["services"]
    workers = {name for name, svc in services.items() if svc.get("image") == "callwatch:latest"}
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = set(re.findall(r"^\s*server (\w+):8080", nginx, re.M))
    assert workers == upstream == {"worker"}
    assert {"redis", "postgres", "lb"} <= set(services)
    # Scaled replicas share one DNS name: nginx must re-resolve it (1.27.3+, with a zone and a resolver).
    assert re.search(r"^\s*server worker:8080 resolve", nginx, re.M) and "zone callwatch" in nginx
    assert "resolver 127.0.0.11" in nginx
    version = tuple(int(x) for x in services["lb"]["image"].split(":")[1].split("-")[0].split("."))
    assert version >= (1, 27, 3)
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_workers_share_the_database_bus_and_secret_but_not_their_data_dirs() -> None:
    worker = compose()["services"]["worker"]
    env = worker["environment"]
    assert env["CALLWATCH_DB"].startswith("postgresql://")
    assert env["CALLWATCH_REDIS"].startswith("redis://redis:")
    assert "${CALLWATCH_SECRET" in env["CALLWATCH_SECRET"]
    assert "CALLWATCH_DATA_DIR" not in env and "CALLWATCH_WORKER_ID" not in env  # one per replica, below
    command = " ".join(worker["command"])
    # Each replica: a data dir named after its container (compose turns $$ into $ for the shell), and the
    # default worker id, hostname-pid, which is the container id and pid 1 thanks to exec.
    assert "exec callwatch serve --host 0.0.0.0 --data-dir /var/lib/callwatch/$${HOSTNAME}" in command
    assert worker["stop_grace_period"]


def test_the_serve_flags_the_deploy_files_use_exist() -> None:
    from service.cli import build_parser

    command = " ".join(compose()["services"]["worker"]["command"]).split("exec ", 1)[1].replace("$${HOSTNAME}", "h")
    args = build_parser().parse_args(command.split()[1:])
    assert (args.host, str(args.data_dir)) == ("0.0.0.0", "/var/lib/callwatch/h")
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None
    build_parser().parse_args(yaml.safe_load(cmd.group(1))[1:])


def test_the_image_copies_nothing_that_dockerignore_leaves_out() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = {src for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for src in line.split()[:-1]}
    assert copied == {"pyproject.toml", "README.md", "audio", "models", "service"}
    assert not copied & ignored
    assert 'CMD ["callwatch", "serve", "--host", "0.0.0.0"]' in dockerfile
    assert "/healthz" in dockerfile and "USER callwatch" in dockerfile
    assert "resolve_model('base')" in dockerfile
