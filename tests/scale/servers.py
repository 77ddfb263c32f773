"""Real PostgreSQL and Redis servers for tests: throwaway, on free ports, in a temporary folder.

PostgreSQL refuses to run as root, and CI runs the tests as root, so there the cluster belongs to
``nobody`` (subprocess ``user=``); its folder is made outside pytest's root-only tmp tree for that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _pg_bin() -> Path:
    """CALLWATCH_PG_BIN, else the newest Debian/Ubuntu-installed major version (15 here, 16 on Ubuntu 24.04)."""
    if os.environ.get("CALLWATCH_PG_BIN"):
        return Path(os.environ["CALLWATCH_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                   if p.parent.name.isdigit() else 0)
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
REDIS_SERVER = os.environ.get("CALLWATCH_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
PG_USER = "callwatch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pg_missing() -> str | None:
    """Why a PostgreSQL cluster cannot be started here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL binaries not found in {PG_BIN} (set CALLWATCH_PG_BIN or run scripts/services install)"
    return None


def redis_missing() -> str | None:
    if shutil.which(REDIS_SERVER) is None:
        return f"{REDIS_SERVER} not found (set CALLWATCH_REDIS_SERVER or run scripts/services install)"
    return None


@dataclass
class PostgresServer:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="callwatch-pg-")))
    user: str | None = field(default_factory=lambda: "nobody" if os.geteuid() == 0 else None)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        proc = subprocess.run(args, user=self.user, cwd=self.root, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            server_log = self.root / "server.log"
            log = server_log.read_text(errors="replace")[-2000:] if server_log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}\n{log}")

    def init(self) -> None:
        if self.user is not None:
            shutil.chown(self.root, user=self.user)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", PG_USER, "-E", "UTF8",
                  "--no-sync", "--no-instructions")

    def start(self) -> None:
        # Durability is pointless for a throwaway cluster and costs the shared CPU; sockets stay in our folder.
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="callwatch-redis-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on the same port as before (a restart); returns once it accepts connections."""
        log = (self.root / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.root)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        """Gone without a goodbye, as a crashed or restarted Redis is to its clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s")
