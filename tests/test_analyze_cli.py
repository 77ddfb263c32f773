"""``callwatch analyze`` end to end: files in, JSON lines out, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from service.cli import main
from tests.signals import leg, vowel

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CALLWATCH_DATA", REPO.parent / "shared" / "data"))
LABELLED = DATA / "calls" / "dev" / "dev-001-interrupting-agent.wav"


def synthetic_call(path: Path, rate: int = 8000) -> None:
    c = leg(8.0, [(1.0, vowel(200, -24, 4.0))], seed=1)
    a = leg(8.0, [(3.0, vowel(110, -24, 3.0))], seed=2)
    x = np.stack([c, a], axis=1)
    if rate != 8000:
        from audio.pcm import resample

        x = np.stack([resample(c, 8000, rate), resample(a, 8000, rate)], axis=1)
    sf.write(path, x, rate, subtype="PCM_16")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]], str]:
    rc = main(["analyze", *args])
    out = capsys.readouterr()
    return rc, [json.loads(line) for line in out.out.splitlines() if line.strip()], out.err


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_stereo_file_at_any_rate(tmp_path: Path, rate: int, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_call(tmp_path / "call.wav", rate)
    rc, events, err = run_cli([str(tmp_path / "call.wav"), "--no-asr"], capsys)
    assert rc == 0
    ints = [e for e in events if e["type"] == "interruption"]
    assert len(ints) == 1 and ints[0]["by"] == "agent" and abs(float(ints[0]["start"]) - 3.0) < 0.1  # type: ignore[arg-type]
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)  # type: ignore[type-var]
    assert "real time" in err


def test_analyze_prints_the_alerts_and_ends_with_the_call_as_the_live_service_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_call(tmp_path / "call.wav")
    rc, events, _ = run_cli([str(tmp_path / "call.wav"), "--no-asr"], capsys)
    assert rc == 0
    [alert] = [e for e in events if e["type"] == "alert"]
    [interruption] = [e for e in events if e["type"] == "interruption"]
    assert alert["rule"] == "interruption" and alert["cause"] == [interruption]
    assert events.index(alert) == events.index(interruption) + 1  # right after its cause
    ended = events[-1]
    assert ended["type"] == "call_ended"
    call = ended["call"]
    assert isinstance(call, dict)
    assert call["id"] == "call" and call["flagged"] is False and call["flags"] == ["interruption"]
    assert call["escalation_score"] == 8 and call["counts"] == {"interruption": 1, "alert": 1}


def test_two_mono_files_and_swapped_channels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_call(tmp_path / "call.wav")
    x, rate = sf.read(tmp_path / "call.wav", dtype="int16")
    sf.write(tmp_path / "c.wav", x[:, 0], rate)
    sf.write(tmp_path / "a.wav", x[:, 1], rate)
    rc, mono, _ = run_cli(["--customer", str(tmp_path / "c.wav"), "--agent", str(tmp_path / "a.wav"), "--no-asr"],
                          capsys)
    assert rc == 0 and [e for e in mono if e["type"] == "interruption"][0]["by"] == "agent"
    rc, swapped, _ = run_cli([str(tmp_path / "call.wav"), "--customer-channel", "1", "--agent-channel", "0",
                              "--no-asr"], capsys)
    assert [e for e in swapped if e["type"] == "interruption"][0]["by"] == "customer"


def test_out_file_and_all_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_call(tmp_path / "call.wav")
    rc, printed, _ = run_cli([str(tmp_path / "call.wav"), "--no-asr", "--all-events", "--out",
                              str(tmp_path / "ev.jsonl")], capsys)
    assert rc == 0 and printed == []
    types = {json.loads(line)["type"] for line in (tmp_path / "ev.jsonl").read_text().splitlines()}
    assert {"speech_start", "speech_end", "prosody", "interruption"} <= types


@pytest.mark.parametrize("args,message", [
    (["missing.wav"], "cannot read missing.wav"),
    (["--customer", "x.wav"], "both --customer"),
    ([], "give a stereo CALL.wav"),
])
def test_bad_input_is_a_clear_error(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, events, err = run_cli([*args, "--no-asr"], capsys)
    assert rc == 2 and events == [] and message in err and "Traceback" not in err


def test_mono_call_asks_for_two_legs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sf.write(tmp_path / "mono.wav", np.zeros(8000, np.int16), 8000)
    rc, _, err = run_cli([str(tmp_path / "mono.wav"), "--no-asr"], capsys)
    assert rc == 2 and "has 1 channel" in err


@pytest.mark.skipif(not LABELLED.exists(), reason=f"shared labelled calls not found at {LABELLED.parent}")
def test_labelled_call_scores_with_the_shared_scorer(tmp_path: Path) -> None:
    det = tmp_path / "det"
    det.mkdir()
    proc = subprocess.run([sys.executable, "-m", "service", "analyze", str(LABELLED), "--no-asr", "--out",
                           str(det / (LABELLED.stem + ".jsonl"))], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / (LABELLED.stem + ".json")).write_text(LABELLED.with_suffix(".json").read_text())
    scored = subprocess.run([sys.executable, str(DATA.parent / "tools" / "score_events.py"), str(labels), str(det),
                             "--json"], capture_output=True, text=True, check=True)
    s = json.loads(scored.stdout)
    assert s["interruption"]["recall"] >= 0.66 and s["interruption"]["precision"] >= 0.66
    assert s["backchannel_false_alarms"] == 0


REAL = DATA / "calls" / "real" / "lca-40"


@pytest.mark.model
@pytest.mark.skipif(not (REAL / "agent.wav").exists(), reason=f"shared real call not found at {REAL}")
def test_analyze_with_the_bundled_model_prints_redacted_utterances(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    # The first 40 s of a real support call, both legs, through the real Whisper base model.
    for name in ("customer", "agent"):
        x, rate = sf.read(REAL / f"{name}.wav", dtype="int16")
        sf.write(tmp_path / f"{name}.wav", x[: 40 * rate], rate)
    rc, events, _ = run_cli(["--customer", str(tmp_path / "customer.wav"), "--agent", str(tmp_path / "agent.wav"),
                             "--language", "en"], capsys)
    assert rc == 0
    utterances = [e for e in events if e["type"] == "utterance"]
    assert len(utterances) >= 3
    assert {u["leg"] for u in utterances} == {"customer", "agent"}
    words = " ".join(str(u["text"]).lower() for u in utterances)
    assert any(w in words for w in ("car", "help", "thank", "appointment", "service"))
    assert all(float(u["t"]) >= float(u["end"]) for u in utterances)  # type: ignore[arg-type]
