"""The live path with the real bundled Whisper model: utterances and phrases reach subscribers and the store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.service.conftest import dev_call, make_settings, native_call, running, wait_ended

pytestmark = [pytest.mark.model, pytest.mark.shared]


async def test_transcripts_are_stored_redacted_and_published(tmp_path: Path) -> None:
    customer, agent = dev_call("dev-002-escalation", seconds=40)
    async with running(make_settings(tmp_path, no_asr=False, language="en")) as srv:
        await native_call(srv, customer, agent, call_id="asr-1")
        assert (await wait_ended(srv, "asr-1"))["status"] == "ended"
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            rows = (await client.get("/v1/calls/asr-1/transcript")).json()["utterances"]
            events = (await client.get("/v1/calls/asr-1/events?type=utterance")).json()["events"]
            metrics = (await client.get("/metrics")).text
    assert rows and {r["leg"] for r in rows} == {"customer", "agent"}
    assert all(r["text"].strip() for r in rows)
    assert len(events) == len(rows) and all(e["t"] >= e["end"] - 1e-6 for e in events)
    assert "callwatch_asr_processed_total" in metrics
