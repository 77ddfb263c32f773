"""Recording policy and retention: audio is kept only when asked, and expires."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np

from tests.service.conftest import make_settings, native_call, running, wait_ended


async def test_unflagged_calls_leave_no_audio_under_the_flagged_policy(tmp_path: Path) -> None:
    quiet = np.zeros(8000, dtype=np.int16)
    async with running(make_settings(tmp_path, recording="flagged")) as srv:
        await native_call(srv, quiet, quiet, call_id="calm")
        call = await wait_ended(srv, "calm")
        assert not call["flagged"]
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            await client.get("/v1/calls/calm/events")  # flushes the writer, so the recording step has run
            assert (await client.get("/v1/calls/calm/recording")).status_code == 404
    assert list((tmp_path / "recordings").glob("*")) == []


async def test_kept_recordings_expire_after_the_retention_period(tmp_path: Path) -> None:
    tone = (1000 * np.sin(np.arange(8000) * 0.1)).astype(np.int16)
    async with running(make_settings(tmp_path, recording="all")) as srv:
        await native_call(srv, tone, tone, call_id="kept")
        await wait_ended(srv, "kept")
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            await client.get("/v1/calls/kept/events")
            assert (await client.get("/v1/calls/kept/recording")).status_code == 200
    assert (tmp_path / "recordings" / "kept.wav").exists()
    async with running(make_settings(tmp_path, retention_days=0)) as srv:
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            for _ in range(500):
                if not (tmp_path / "recordings" / "kept.wav").exists():
                    break
                await client.get("/healthz")
            assert (await client.get("/v1/calls/kept/recording")).status_code == 404
            assert (await client.get("/v1/calls/kept")).json()["status"] == "ended"
    assert not (tmp_path / "recordings" / "kept.wav").exists()


async def test_recording_policy_none_writes_nothing(tmp_path: Path) -> None:
    tone = (1000 * np.sin(np.arange(16000) * 0.1)).astype(np.int16)
    async with running(make_settings(tmp_path, recording="none")) as srv:
        await native_call(srv, tone, tone, call_id="none")
        await wait_ended(srv, "none")
    assert not (tmp_path / "recordings").exists() or not list((tmp_path / "recordings").iterdir())
