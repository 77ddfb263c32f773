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


def test_the_load_balancer_sends_to_exactly_the_compose_workers() -> None:
    services = compose()["services"]
    workers = {name for name, svc in services.items() if svc.get("image") == "callwatch:latest"}
    upstream = set(re.findall(r"^\s*server (\w+):8080", (ROOT / "deploy" / "nginx.conf").read_text(), re.M))
    assert workers == upstream == {"worker1", "worker2"}
    assert {"redis", "postgres", "lb"} <= set(services)


def test_workers_share_the_database_bus_and_secret_but_not_their_data_dirs() -> None:
    services = compose()["services"]
    envs = [services[w]["environment"] for w in ("worker1", "worker2")]
    for key in ("CALLWATCH_DB", "CALLWATCH_REDIS", "CALLWATCH_SECRET"):
        assert envs[0][key] == envs[1][key]
    assert envs[0]["CALLWATCH_DB"].startswith("postgresql://")
    assert envs[0]["CALLWATCH_REDIS"].startswith("redis://redis:")
    assert envs[0]["CALLWATCH_DATA_DIR"] != envs[1]["CALLWATCH_DATA_DIR"]


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
