"""Running the callwatch image with Debian's podman: build it, start containers, wait for their health check.

Every container runs with the runc runtime (crun cannot create containers under this kind of host's cgroups),
the host's network (so it reaches PostgreSQL and Redis on 127.0.0.1, and is reached there; the service is told
to listen on 127.0.0.1 only) and nofile/nproc limits no higher than this process's own hard limits.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "container-image"
BASE = os.environ.get("CALLWATCH_BASE_IMAGE", "localhost/python:3.11-slim")
"""The stand-in base image the script makes (its default tag)."""
CANNOT = 3
"""scripts/container-image's exit status when this machine cannot build images (its last line says why)."""

BUILD_TIMEOUT_S = 1800.0
HEALTHY_TIMEOUT_S = 240.0
"""The Dockerfile's HEALTHCHECK allows a 120 s start period; a loaded 2-core machine gets twice that."""

NOFILE, NPROC = 4096, 1024


def ulimits() -> list[str]:
    """nofile and nproc as the service wants them, capped at what this process may grant (runc refuses more)."""
    args = []
    for name, limit, want in (("nofile", resource.RLIMIT_NOFILE, NOFILE), ("nproc", resource.RLIMIT_NPROC, NPROC)):
        _, hard = resource.getrlimit(limit)
        n = want if hard == resource.RLIM_INFINITY else min(want, hard)
        args += ["--ulimit", f"{name}={n}:{n}"]
    return args


def podman(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", "--runtime", "runc", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc


@dataclass
class BuildResult:
    image: str | None
    """The tag built, or None."""
    cannot: str | None
    """Why this machine cannot build images (the test then skips), or None."""
    failure: str | None
    """The build's own failure, with its log's tail (the test then fails), or None."""
    seconds: float


def build_image(log: Path) -> BuildResult:
    began = time.monotonic()
    with log.open("w") as out:
        try:
            proc = subprocess.run([str(SCRIPT), "build"], cwd=REPO, stdout=subprocess.PIPE, stderr=out, text=True,
                                  timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return BuildResult(None, None, f"the build ran past {BUILD_TIMEOUT_S:.0f} s; log: {log}",
                               time.monotonic() - began)
    seconds = time.monotonic() - began
    text = log.read_text(errors="replace")
    if proc.returncode == CANNOT:
        lines = [line for line in text.splitlines() if line.startswith("cannot build here:")]
        return BuildResult(None, lines[-1] if lines else text[-500:], None, seconds)
    if proc.returncode != 0:
        return BuildResult(None, None, f"scripts/container-image build exited {proc.returncode}; log {log}:\n"
                           f"{text[-4000:]}", seconds)
    return BuildResult(proc.stdout.strip().splitlines()[-1], None, None, seconds)


def runtime_missing() -> str | None:
    """Why containers cannot run here at all, before any image is involved, or None."""
    if os.environ.get("CALLWATCH_CONTAINER_TESTS", "1") == "0":
        return "CALLWATCH_CONTAINER_TESTS=0"
    if os.geteuid() != 0 and shutil.which("podman") is None:
        return "podman is not installed and installing it needs root (scripts/container-image install)"
    return None


@dataclass
class Container:
    name: str
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return (proc.stdout + proc.stderr)[-4000:]

    def state(self) -> dict[str, object]:
        out = podman("inspect", "--format", "{{json .State}}", self.name).stdout
        state: dict[str, object] = json.loads(out)
        return state

    def healthcheck(self) -> bool:
        """Runs the image's own HEALTHCHECK command once, as Docker would; True when it passes."""
        return podman("healthcheck", "run", self.name, check=False, timeout=30).returncode == 0

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.state().get("Running"):
                raise AssertionError(f"container {self.name} exited: {self.state()}\n{self.logs()}")
            if self.healthcheck():
                return
            time.sleep(2.0)
        raise AssertionError(f"container {self.name} not healthy after {HEALTHY_TIMEOUT_S:.0f} s:\n{self.logs()}")

    def stop(self, timeout_s: int = 60) -> int:
        """SIGTERM, as `docker stop` sends; returns the exit code."""
        podman("stop", "-t", str(timeout_s), self.name, timeout=timeout_s + 60)
        code = self.state().get("ExitCode")
        return int(code) if isinstance(code, int) else -1

    def remove(self) -> None:
        podman("rm", "-f", "-t", "5", self.name, check=False, timeout=120)


def start(image: str, port: int, env: dict[str, str], args: list[str] | None = None) -> Container:
    """A detached container of ``image``, the service on 127.0.0.1:``port`` of the host's network."""
    name = f"callwatch-test-{uuid.uuid4().hex[:8]}"
    envs = [f"--env={k}={v}" for k, v in {"CALLWATCH_PORT": str(port), **env}.items()]
    # The image's command with the address narrowed to loopback: the host network is shared.
    command = ["callwatch", "serve", "--host", "127.0.0.1", *(args or [])]
    # Its own hostname, as compose gives each replica: the default worker id is hostname-pid.
    podman("run", "--detach", "--name", name, "--hostname", name, "--network", "host", *ulimits(), *envs, image,
           *command)
    return Container(name, port)
