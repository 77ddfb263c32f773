from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from service.cli import serve as serve_cmd
from service.core import auth
from service.core.settings import Settings, SettingsError, load


def test_token_round_trip() -> None:
    token = auth.issue("k", "agent", "a1", ttl_s=60, now=1000)
    claims = auth.verify("k", token, now=1001)
    assert claims == auth.Claims(role="agent", agent_id="a1", exp=1060)


@pytest.mark.parametrize("mangle", [
    lambda t: t + "x",
    lambda t: t.replace(".", ""),
    lambda t: "e30." + t.split(".")[1],
    lambda t: "",
    lambda t: "....",
])
def test_tampered_tokens_are_refused(mangle: object) -> None:
    token = auth.issue("k", "supervisor", now=1000)
    with pytest.raises(auth.AuthError):
        auth.verify("k", mangle(token), now=1001)  # type: ignore[operator]


def test_wrong_secret_and_expiry() -> None:
    token = auth.issue("k", "ingest", ttl_s=10, now=1000)
    with pytest.raises(auth.AuthError, match="signature"):
        auth.verify("other", token, now=1001)
    with pytest.raises(auth.AuthError, match="expired"):
        auth.verify("k", token, now=1011)


def test_agent_token_needs_agent_id() -> None:
    with pytest.raises(ValueError):
        auth.issue("k", "agent")


def test_token_from_header_or_query() -> None:
    assert auth.token_from({"authorization": "Bearer abc"}, {"token": "q"}) == "abc"
    assert auth.token_from({}, {"token": "q"}) == "q"
    assert auth.token_from({"authorization": "Basic xyz"}, {}) is None


def test_a_requests_claims_and_a_tokens_role_are_checked_in_one_place() -> None:
    ingest = auth.issue("k", "ingest")
    assert auth.claims("k", {"authorization": f"Bearer {ingest}"}, {}).role == "ingest"
    assert auth.claims("k", {}, {"token": ingest}).role == "ingest"
    with pytest.raises(auth.AuthError, match="missing token"):
        auth.claims("k", {"authorization": "Basic xyz"}, {})
    with pytest.raises(auth.AuthError, match="signature"):
        auth.claims("other", {}, {"token": ingest})
    assert auth.allows("k", ingest, "ingest")
    assert not auth.allows("k", ingest, "supervisor")
    assert not auth.allows("other", ingest, "ingest")
    assert not auth.allows("k", None, "ingest") and not auth.allows("k", "é.é", "ingest")


def test_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    s1 = auth.ensure_secret(Settings(data_dir=tmp_path))
    s2 = auth.ensure_secret(Settings(data_dir=tmp_path))
    assert s1.secret and s1.secret == s2.secret
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0
    assert auth.ensure_secret(Settings(data_dir=tmp_path, secret="given")).secret == "given"


def test_settings_from_env_and_overrides(tmp_path: Path) -> None:
    env = {"CALLWATCH_PORT": "9000", "CALLWATCH_NO_ASR": "yes", "CALLWATCH_DATA_DIR": str(tmp_path),
           "CALLWATCH_SECRET": "s", "CALLWATCH_RECORDING": "all"}
    s = load(env, port=9100, language=None)
    assert (s.port, s.no_asr, s.secret, s.recording, s.language) == (9100, True, "s", "all", "auto")
    assert s.database_url == f"sqlite:///{tmp_path / 'callwatch.db'}"


def test_worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load({"CALLWATCH_WORKER_TIMEOUT_S": "3", "CALLWATCH_HEARTBEAT_S": "0.5", "CALLWATCH_ASR_DEVICE": "cuda"},
             worker_id="w7", asr_batch_windows=16)
    assert (s.worker, s.worker_timeout_s, s.heartbeat_s, s.asr_device, s.asr_batch_windows) == \
        ("w7", 3.0, 0.5, "cuda", 16)
    monkeypatch.setattr("socket.gethostname", lambda: "box")
    assert load({}).worker == f"box-{os.getpid()}"  # stable across restarts of a container (pid 1)


@pytest.mark.parametrize("env", [{"CALLWATCH_PORT": "x"}, {"CALLWATCH_RECORDING": "some"},
                                 {"CALLWATCH_DB": "mysql://x"}, {"CALLWATCH_NO_ASR": "maybe"},
                                 {"CALLWATCH_WORKER_TIMEOUT_S": "6", "CALLWATCH_HEARTBEAT_S": "5"},
                                 {"CALLWATCH_ASR_DEVICE": "tpu"}, {"CALLWATCH_ASR_BATCH_WINDOWS": "0"},
                                 {"CALLWATCH_ASR_FIT_S": "-1"}, {"CALLWATCH_ASR_FIT_S": "45"}])
def test_bad_settings_say_what_is_wrong(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        load(env)


def test_tokens_in_logged_paths_are_redacted() -> None:
    import logging

    from service.core.logsafe import RedactTokens

    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("1.2.3.4", "/v1/ws/agent?token=abc.def&x=1"), None)
    assert RedactTokens().filter(record)
    assert record.getMessage() == '1.2.3.4 - "WebSocket /v1/ws/agent?token=[redacted]&x=1" [accepted]'


def test_serve_flags_override_the_environment() -> None:
    p = argparse.ArgumentParser()
    serve_cmd.add_arguments(p)
    args = p.parse_args(["--asr-workers", "2", "--asr-threads", "1", "--no-asr"])
    s = serve_cmd.settings_from(args, {"CALLWATCH_ASR_THREADS": "4", "CALLWATCH_ASR_WORKERS": "3",
                                       "CALLWATCH_ASR_BATCH_WINDOWS": "8"})
    assert (s.asr_workers, s.asr_threads, s.asr_batch_windows, s.no_asr) == (2, 1, 8, True)
    defaults = serve_cmd.settings_from(p.parse_args([]), {})
    assert (defaults.asr_workers, defaults.asr_threads, defaults.no_asr) == (1, 2, False)


def test_window_fit_is_the_transcribers_default_and_can_be_set() -> None:
    from models.whisper import DecodeSettings

    assert load({}).asr_fit_s == DecodeSettings().fit_s
    assert load({"CALLWATCH_ASR_FIT_S": "0"}).asr_fit_s == 0.0
    p = argparse.ArgumentParser()
    serve_cmd.add_arguments(p)
    assert serve_cmd.settings_from(p.parse_args(["--asr-fit", "8"]), {"CALLWATCH_ASR_FIT_S": "5"}).asr_fit_s == 8.0
