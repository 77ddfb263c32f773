"""The serve, token and replay subcommands, through the console script's own parser."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from service.cli import main
from service.cli.replay import rotated
from service.core import auth
from tests.service.conftest import AUDIOHOOK_KEY, AUDIOHOOK_SECRET, CALLS, Server


def test_token_prints_a_token_for_the_configured_secret(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CALLWATCH_SECRET", "s3")
    assert main(["token", "--role", "agent", "--agent-id", "ann"]) == 0
    claims = auth.verify("s3", capsys.readouterr().out.strip())
    assert (claims.role, claims.agent_id) == ("agent", "ann")
    assert main(["token", "--role", "agent"]) == 2  # an agent token needs an agent id


def test_token_scopes_a_supervisor_to_teams(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CALLWATCH_SECRET", "s3")
    assert main(["token", "--role", "supervisor", "--teams", "north, south,north"]) == 0
    claims = auth.verify("s3", capsys.readouterr().out.strip())
    assert (claims.role, claims.teams) == ("supervisor", ("north", "south"))
    assert main(["token", "--role", "supervisor"]) == 0
    assert auth.verify("s3", capsys.readouterr().out.strip()).teams is None  # unscoped: every agent
    assert main(["token", "--role", "agent", "--agent-id", "ann", "--teams", "north"]) == 2
    assert main(["token", "--role", "supervisor", "--teams", " , "]) == 2
    assert "--teams" in capsys.readouterr().err


def test_token_persists_a_generated_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CALLWATCH_SECRET", raising=False)
    assert main(["token", "--role", "supervisor", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    assert auth.verify((tmp_path / "secret").read_text().strip(), token).role == "supervisor"


def test_serve_refuses_bad_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CALLWATCH_RECORDING", "sometimes")
    assert main(["serve", "--no-asr"]) == 2
    assert "recording policy" in capsys.readouterr().err


@pytest.mark.shared
@pytest.mark.parametrize("protocol", ["native", "twilio", "audiohook"])
async def test_replay_reports_alerts_and_latency(server: Server, protocol: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    x, rate = sf.read(CALLS / "dev-001-interrupting-agent.wav", dtype="int16")
    wav = tmp_path / "call.wav"
    sf.write(wav, x[35 * rate: 65 * rate], rate, subtype="PCM_16")
    for name, value in {"CALLWATCH_SECRET": server.settings.secret, "CALLWATCH_AUDIOHOOK_API_KEY": AUDIOHOOK_KEY,
                        "CALLWATCH_AUDIOHOOK_CLIENT_SECRET": AUDIOHOOK_SECRET}.items():
        monkeypatch.setenv(name, value)
    argv = ["replay", str(wav), "--url", server.ws, "--protocol", protocol, "--speed", "30", "--calls", "2",
            "--agent-id", "ann"]
    assert await asyncio.to_thread(main, argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["calls"] == 2 and summary["errors"] == 0 and summary["alerts"] >= 2
    assert set(summary["latency_ms"]) == {"p50", "p95", "max"} and summary["latency_ms"]["max"] is not None
    assert any("interruption" in line for line in lines[:-1])


def test_rotated_copies_start_at_their_share_of_the_call_on_a_frame() -> None:
    customer = np.arange(1000, dtype=np.int16)
    agent = -customer
    assert [rotated(customer, agent, k, 3)[0][0] for k in range(3)] == [0, 320, 640]
    c, a = rotated(customer, agent, 2, 3)
    assert np.array_equal(np.sort(c), customer) and np.array_equal(a, -c)  # wrapped, nothing lost, legs in step
