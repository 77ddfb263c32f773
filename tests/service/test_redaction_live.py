"""Redaction on the live path: a card read in pieces is retracted on screen, never stored in the clear, and
silenced in the recording; the store replaces an utterance that a later redaction rewrites."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import soundfile as sf
import uvicorn
from websockets.asyncio.client import connect

from service.analysis.redaction import apply_redactions
from service.core.settings import Settings
from service.storage.recording import RawRecorder
from service.storage.sqlite import Store
from service.web.app import create_app
from tests.service.conftest import Server, make_settings, native_call, wait_ended
from tests.signals import leg, vowel

SAID = ["My card number is", "4 1 1 1", "1 1 1 1", "1 1 1 1", "1 1 1 1", "thank you"]
BURST_S, STEP_S = 0.9, 1.6


class Scripted:
    """Answers the customer's speech segments, in order, with ``SAID``; words spread evenly over each."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, call: Any, seg: Any) -> asyncio.Future[Any]:
        text = ""
        if seg.leg == "customer" and self.n < len(SAID):
            text, self.n = SAID[self.n], self.n + 1
        tokens = text.split()
        step = (seg.end_s - seg.start_s - 0.4) / max(1, len(tokens))
        words = [SimpleNamespace(word=w, start=seg.start_s + 0.2 + i * step, end=seg.start_s + 0.2 + (i + 1) * step)
                 for i, w in enumerate(tokens)]
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(text=text, words=words, language="en", rejected=None))
        return done


@contextlib.asynccontextmanager
async def serving(settings: Settings, submit: Scripted) -> AsyncIterator[Server]:
    config = uvicorn.Config(create_app(settings, submit=submit), host="127.0.0.1", port=0, log_level="warning",
                            ws="websockets-sansio", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield Server(settings, server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await task


def digits(x: object) -> str:
    return re.sub(r"\D", "", json.dumps(x))


async def test_a_card_read_in_pieces_is_retracted_and_never_stored_or_recorded(tmp_path: Path) -> None:
    starts = [1.0 + i * STEP_S for i in range(len(SAID))]
    customer = leg(starts[-1] + 3.0, [(s, vowel(180, -20, BURST_S)) for s in starts])
    agent = leg(len(customer) / 8000, [], seed=3)
    seen: list[dict[str, Any]] = []
    async with serving(make_settings(tmp_path, no_asr=False), Scripted()) as srv:
        async with connect(f"{srv.ws}/v1/ws/agent", additional_headers=srv.bearer("agent", "agent-1")) as sub:
            await native_call(srv, customer, agent, call_id="card-1")
            await wait_ended(srv, "card-1")
            with contextlib.suppress(TimeoutError):
                while True:
                    seen.append(json.loads(await asyncio.wait_for(sub.recv(), 1.0)))
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            events = (await client.get("/v1/calls/card-1/events")).json()["events"]
            rows = (await client.get("/v1/calls/card-1/transcript")).json()["utterances"]
            call = (await client.get("/v1/calls/card-1")).json()
    shown = [e for e in seen if e["type"] == "utterance"]
    assert [e["text"] for e in shown][0] == "My card number is" and len(shown) == len(SAID)
    retracted = [e for e in seen if e["type"] == "utterance_redacted"]
    assert retracted and all("card" in e["tags"] and not digits(e["text"]) for e in retracted)
    # On screen, after the retractions: no digit left.
    assert not digits([e["text"] for e in apply_redactions(seen) if e["type"] == "utterance"])
    # In the store: no digit in any utterance, event or transcript row.
    assert not digits([e.get("text") for e in events] + [w["word"] for e in events for w in e.get("words", [])])
    assert not digits([r["text"] for r in rows]) and len(rows) == len(SAID)
    # In the recording: the digits' audio is silent, the words around them are not.
    assert call["recording"]
    wav, rate = sf.read(tmp_path / "recordings" / "card-1.wav", dtype="int16")
    for i, s in enumerate(starts):
        burst = np.abs(wav[int(s * rate) + 400: int((s + BURST_S) * rate) - 400, 0]).max()
        assert (burst == 0) == (1 <= i <= 4), (i, burst)


async def test_listen_in_goes_silent_from_the_card_cue_until_the_number_is_over(tmp_path: Path) -> None:
    """The listener hears the cue ("My card number is") but none of the digits after it, on either leg."""
    from tests.service.test_subscribers import _until_listening

    starts = [1.0 + i * STEP_S for i in range(len(SAID))]
    customer = leg(starts[-1] + 3.0, [(s, vowel(180, -20, BURST_S)) for s in starts])
    agent = leg(len(customer) / 8000, [], noise_db=-40.0, seed=3)
    heard = bytearray()
    async with serving(make_settings(tmp_path, no_asr=False), Scripted()) as srv, \
            connect(f"{srv.ws}/v1/ws/agent", additional_headers=srv.bearer("agent", "agent-1")) as sub, \
            connect(f"{srv.ws}/v1/ingest/native", additional_headers=srv.bearer("ingest")) as ingest:
        await ingest.send(json.dumps({"type": "start", "call_id": "card-2", "agent_id": "agent-1",
                                      "sample_rate": 8000, "encoding": "pcm16", "channels": 2,
                                      "channel_map": ["customer", "agent"], "language": "en"}))
        await ingest.recv()
        async with connect(f"{srv.ws}/v1/ws/listen/card-2", additional_headers=srv.bearer("supervisor")) as lst:
            await asyncio.wait_for(_until_listening(srv, "card-2"), 10)

            async def listening() -> None:
                with contextlib.suppress(Exception):
                    async for msg in lst:
                        heard.extend(msg if isinstance(msg, bytes) else b"")
            reader = asyncio.create_task(listening())
            sent, said = 0, 0
            # Each burst's words are in (the scripted recogniser answers at once) before the next burst is sent,
            # as they would be on a live call at a second of transcription delay.
            for i, s in enumerate([*starts, len(customer) / 8000]):
                upto = min(len(customer), int((s + (BURST_S + 0.6 if i < len(starts) else 0)) * 8000))
                while sent < upto:
                    step = min(1600, upto - sent)
                    await ingest.send(np.stack([customer[sent:sent + step], agent[sent:sent + step]], 1)
                                      .astype("<i2").tobytes())
                    sent += step
                while i < len(starts) and said <= i:
                    ev = json.loads(await asyncio.wait_for(sub.recv(), 10))
                    said += ev["type"] == "utterance"
            for _ in range(1000):
                if len(heard) >= 4 * len(customer):
                    break
                await asyncio.sleep(0.01)
            await ingest.send(json.dumps({"type": "stop"}))
            await asyncio.wait_for(reader, 10)
    pcm = np.frombuffer(bytes(heard), dtype="<i2").reshape(-1, 2)
    assert len(pcm) == len(customer)
    loud = [int(np.abs(pcm[int(s * 8000) + 400: int((s + BURST_S) * 8000) - 400, 0]).max()) for s in starts]
    assert loud[0] > 1000 and loud[1:] == [0] * (len(starts) - 1), loud
    assert np.abs(pcm[: int(starts[0] * 8000), 1]).max() > 0  # the agent's leg before the cue
    assert not np.abs(pcm[int(starts[1] * 8000):, 1]).any()  # and none of it after: either leg may read it


def test_the_store_replaces_an_utterance_already_written(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    utt = {"type": "utterance", "leg": "customer", "start": 2.5, "end": 3.5, "text": "4111 1111", "language": "en",
           "t": 4.0, "words": [{"word": "4111", "start": 2.6, "end": 3.0}]}
    store.write([("events", ("c", 0, [utt]))])
    fix = {"type": "utterance_redacted", "leg": "customer", "start": 2.5, "end": 3.5, "text": "[card]",
           "language": "en", "tags": ["card"], "words": [{"word": "[card]", "start": 2.6, "end": 3.4}], "t": 9.0}
    store.write([("events", ("c", 1, [fix]))])
    assert [e["text"] for e in store.events("c")] == ["[card]", "[card]"]
    assert store.events("c")[0]["words"] == fix["words"] and store.events("c")[0]["t"] == 4.0
    assert [r["text"] for r in store.transcript("c")] == ["[card]"]


def test_the_recording_is_silenced_before_it_is_written(tmp_path: Path) -> None:
    rec = RawRecorder(tmp_path, "c")
    rec.append((np.ones((8000 * 3, 2), dtype="<i2") * 1000).tobytes())
    path = rec.finish(True, silence=[(1.0, 1.5)])
    assert path is not None
    wav, _ = sf.read(path, dtype="int16")
    assert (wav[8000:12000] == 0).all() and (wav[:8000] == 1000).all() and (wav[12000:] == 1000).all()


def test_a_word_timed_short_is_silenced_whole_and_its_neighbours_beyond_a_pause_are_kept(tmp_path: Path) -> None:
    # Noise throughout; a digit 1.0-1.5 s that the recogniser timed from 1.25 s, and another word after a pause.
    rng = np.random.default_rng(0)
    pcm = rng.normal(0, 20, (8000 * 3, 2)).astype("<i2")
    pcm[8000:12000, 0] += (3000 * np.sin(np.arange(4000) * 0.3)).astype("<i2")
    pcm[14000:18000, 0] += (3000 * np.sin(np.arange(4000) * 0.3)).astype("<i2")
    rec = RawRecorder(tmp_path, "c")
    rec.append(pcm.tobytes())
    path = rec.finish(True, silence=[(1.25, 1.6)])
    assert path is not None
    wav, _ = sf.read(path, dtype="int16")
    assert (wav[8000:12800] == 0).all()
    assert np.abs(wav[14000:18000, 0]).max() > 1000 and np.abs(wav[:7900, 0]).max() > 0
