"""The service's configuration: one frozen object, read once at the edge from ``CALLWATCH_*`` and CLI flags.

Nothing below the command line reads the environment; everything gets a ``Settings``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

RecordingPolicy = Literal["flagged", "all", "none"]
RECORDING_POLICIES: tuple[RecordingPolicy, ...] = ("flagged", "all", "none")
ASR_DEVICES = ("cpu", "cuda", "auto")


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("var")
    db_url: str = ""
    """Empty means ``sqlite:///<data_dir>/callwatch.db``."""
    redis_url: str = ""
    """Empty: the in-process hub. ``redis://...``: events and listen-in audio cross between workers."""
    worker_id: str = ""
    """Which worker this process is, in the shared database; empty means ``default_worker_id()``
    (hostname-pid: stable across restarts of a container, whose main process is always pid 1)."""
    heartbeat_s: float = 5.0
    """How often a worker tells the database (and the other workers, over the bus) that it is alive."""
    worker_timeout_s: float = 30.0
    """A worker not heard from this long is dead: its live calls are closed as interrupted by the others."""
    shutdown_timeout_s: float = 30.0
    """On SIGTERM: how long open connections get to finish, and then how long the last writes get, before the
    worker exits anyway (a database that stopped answering must not keep it alive)."""
    asr_device: str = "cpu"
    """Where Whisper runs: ``cpu``, ``cuda`` (a GPU worker) or ``auto``."""
    asr_compute_type: str = ""
    """CTranslate2 compute type; empty means int8 on CPU, float16 on a GPU."""
    asr_batch_windows: int = 4
    """30 s windows of packed utterances per encoder/decoder call; a GPU takes 16 or more."""
    asr_fit_s: float = 3.0
    """Whisper encodes a batch of windows over its fullest one's speech plus this much silence (rounded up to
    5 s), not always 30 s; 0 encodes whole windows. Same as ``models.whisper.DecodeSettings.fit_s``."""
    asr_workers: int = 1
    """Whisper batches run side by side (model replicas of ``asr_threads`` each), each batch one packed window at
    most. Measured on 2 cores (``benchmarks.capacity --asr --rotate``, transcripts p50 / p95): one replica of
    two threads is best up to about 10 calls of the shared real call (10 calls: 1.2 / 1.8-2.3 s against
    1.6 / 2.9 s with two of one thread; even at 15); two of one thread keep a dense load fresher (20 copies of
    a call where both speak 1.1 s a second: 2.3-2.6 / 3.3-3.5 s against 2.9-4.4 / 4.4-7.8 s). More cores: more
    replicas (not measured here)."""
    asr_threads: int = 2
    """CPU threads of each of those replicas (on a GPU worker: for the feature extraction only)."""
    asr_nice: int = 10
    """How much lower than the signal path the transcription threads run (OS nice, 0-19): when the
    processor is short, transcripts wait, alerts do not. 0 lets them compete as equals."""
    model: str = "base"
    language: str = "auto"
    no_asr: bool = False
    secret: str = ""
    """HMAC key for access tokens; empty until ``auth.ensure_secret`` fills it."""
    token_ttl_s: int = 12 * 3600
    twilio_auth_token: str = ""
    public_url: str = ""
    """Externally visible base URL (``wss://host``), for the Twilio signature when behind a proxy."""
    audiohook_api_key: str = ""
    audiohook_client_secret: str = ""
    recording: RecordingPolicy = "flagged"
    retention_days: int = 30
    subscriber_queue: int = 256
    """Messages a subscriber may fall behind before it is disconnected."""
    start_timeout_s: float = 10.0
    """An ingest connection that has not started a call by then is closed (Genesys expects `opened` in ~5 s)."""
    idle_timeout_s: float = 120.0
    """A call whose sender goes quiet this long (no audio, no ping) is ended with what was received."""
    max_frame_bytes: int = 256 * 1024
    """Largest ingest websocket message; a second of 8-channel 48 kHz PCM fits, anything bigger is abuse."""
    max_audio_speed: float = 2.0
    """How much faster than real time a live call may deliver audio (received plus declared gaps), measured
    from its start; past ``audio_burst_s`` ahead of that, the sender is cut off (``too_fast``). A real call
    cannot be ahead of its own clock; a replay at ``--speed 2`` still fits. 0 turns the check off."""
    audio_burst_s: float = 30.0
    """Audio a call may be ahead of ``max_audio_speed`` × its age: a sender catching up after a stall, or
    audio buffered before the socket opened."""
    header_timeout_s: float = 10.0
    """A connection must have sent its whole request head (request line and headers) within this time."""
    max_connections: int = 2000
    """Open connections of all kinds; further ones are closed as they arrive. 0: no limit."""
    max_connections_per_address: int = 256
    """Open connections from one client address; 0: no limit. Behind a proxy every client has the proxy's
    address: raise this or set it to 0 and limit there. Twilio and Genesys send many calls from few addresses."""

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'callwatch.db'}"

    @property
    def worker(self) -> str:
        return self.worker_id or default_worker_id()


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _convert(name: str, raw: str, kind: object) -> object:
    if kind in (bool, "bool"):
        low = raw.strip().lower()
        if low in _BOOL_TRUE:
            return True
        if low in _BOOL_FALSE:
            return False
        raise SettingsError(f"CALLWATCH_{name.upper()}={raw!r} is not a boolean")
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"CALLWATCH_{name.upper()}={raw!r} is not an integer") from None
    if kind in (float, "float"):
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"CALLWATCH_{name.upper()}={raw!r} is not a number") from None
    if kind in (Path, "Path"):
        return Path(raw)
    return raw


# Environment names that read better than the field names they set.
_ENV_ALIASES = {"db_url": "DB", "redis_url": "REDIS", "secret": "SECRET", "data_dir": "DATA_DIR"}


def load(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Defaults, then ``CALLWATCH_*`` variables, then explicit overrides (CLI flags; ``None`` = not given)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for f in fields(Settings):
        for key in (f"CALLWATCH_{f.name.upper()}", f"CALLWATCH_{_ENV_ALIASES.get(f.name, '')}"):
            if key != "CALLWATCH_" and key in env:
                values[f.name] = _convert(f.name, env[key], f.type)
                break
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = replace(Settings(), **values)  # type: ignore[arg-type]
    return validate(settings)


def validate(s: Settings) -> Settings:
    if s.recording not in RECORDING_POLICIES:
        raise SettingsError(f"recording policy must be one of {', '.join(RECORDING_POLICIES)}, "
                            f"got {s.recording!r}")
    if not 0 <= s.port <= 65535:
        raise SettingsError(f"port {s.port} is out of range")
    if s.retention_days < 0:
        raise SettingsError("retention_days cannot be negative")
    if s.start_timeout_s <= 0 or s.idle_timeout_s <= 0 or s.shutdown_timeout_s <= 0:
        raise SettingsError("timeouts must be positive")
    if s.heartbeat_s <= 0 or s.worker_timeout_s < 2 * s.heartbeat_s:
        raise SettingsError("heartbeat_s must be positive and worker_timeout_s at least twice heartbeat_s "
                            "(one late heartbeat must not make a live worker look dead)")
    if len(s.worker_id) > 200:
        raise SettingsError("worker_id is longer than 200 characters")
    if s.asr_device not in ASR_DEVICES:
        raise SettingsError(f"asr_device must be one of {', '.join(ASR_DEVICES)}, got {s.asr_device!r}")
    if not 0 <= s.asr_nice <= 19:
        raise SettingsError(f"CALLWATCH_ASR_NICE must be 0..19, got {s.asr_nice}")
    if s.asr_batch_windows < 1 or s.asr_threads < 1:
        raise SettingsError("asr_batch_windows and asr_threads must be at least 1")
    if not 0 <= s.asr_fit_s <= 30:
        raise SettingsError(f"asr_fit_s must be 0 (whole windows) to 30 seconds, got {s.asr_fit_s}")
    if not 1 <= s.asr_workers <= 64:
        raise SettingsError(f"asr_workers must be 1 to 64, got {s.asr_workers}")
    if s.max_audio_speed < 0 or s.audio_burst_s < 0 or s.header_timeout_s <= 0:
        raise SettingsError("max_audio_speed and audio_burst_s must be >= 0, header_timeout_s positive")
    if s.max_audio_speed and s.max_audio_speed < 1:
        raise SettingsError("max_audio_speed below 1 would cut off every real-time call: use >= 1, or 0 for off")
    if s.max_connections < 0 or s.max_connections_per_address < 0:
        raise SettingsError("max_connections and max_connections_per_address must be >= 0 (0: no limit)")
    if s.subscriber_queue < 1 or s.max_frame_bytes < 1024:
        raise SettingsError("subscriber_queue must be >= 1 and max_frame_bytes >= 1024")
    if not s.database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        shown = s.database_url.split("@")[-1]  # never echo a password
        raise SettingsError(f"unsupported database URL {shown!r}: use sqlite:///PATH or postgresql://...")
    return s

