"""Two workers' hubs over a real Redis: screens on one see the calls, alerts and audio of the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.bus_redis import RedisBus
from service.hub import Hub
from service.hub_bus import BusHub, close_hub, open_hub
from tests.scale.servers import RedisServer
from tests.scale.test_bus import WAIT_S, until


@pytest.fixture
async def hubs(redis_server: RedisServer) -> AsyncIterator[tuple[BusHub, BusHub]]:
    a, b = BusHub(RedisBus(redis_server.url)), BusHub(RedisBus(redis_server.url))
    await a.start()
    await b.start()
    yield a, b
    for hub in (a, b):
        await hub.close()
        await hub.bus.close()


def lifecycle(kind: str, call_id: str, agent_id: str = "a1") -> dict[str, Any]:
    return {"type": kind, "call_id": call_id, "t": 0.0,
            "call": {"id": call_id, "agent_id": agent_id, "status": "live" if kind != "call_ended" else "completed"}}


def alert(call_id: str, n: int) -> dict[str, Any]:
    return {"type": "alert", "id": f"{call_id}-{n}", "rule": "interruption", "severity": "warning", "t": float(n),
            "call_id": call_id}


async def get(queue: asyncio.Queue[Any]) -> Any:
    return await asyncio.wait_for(queue.get(), WAIT_S)


async def test_screens_on_either_worker_see_a_call_once(hubs: tuple[BusHub, BusHub]) -> None:
    a, b = hubs
    board_a, board_b = a.subscribe("supervisor"), b.subscribe("supervisor")
    agent_b, other_agent_b = b.subscribe("agent", "a1"), b.subscribe("agent", "a2")

    started, first = lifecycle("call_started", "c1"), alert("c1", 1)
    a.publish(started, "a1")
    a.publish(first, "a1")
    assert [await get(board_b.queue), await get(board_b.queue)] == [started, first]
    assert [await get(agent_b.queue), await get(agent_b.queue)] == [started, first]
    assert b.is_live_elsewhere("c1") and not a.is_live_elsewhere("c1")

    # Redis keeps one channel in order: once A sees B's marker, any echo of A's own events would be in front.
    marker = lifecycle("call_started", "c2", "a2")
    b.publish(marker, "a2")
    assert [await get(board_a.queue) for _ in range(3)] == [started, first, marker]
    assert board_a.queue.empty()
    assert await get(other_agent_b.queue) == marker
    assert other_agent_b.queue.empty()

    a.publish(lifecycle("call_ended", "c1"), "a1")
    await until(lambda: not b.is_live_elsewhere("c1"), "the other worker to see the call end")


async def test_listen_in_to_a_call_on_another_worker(hubs: tuple[BusHub, BusHub]) -> None:
    a, b = hubs
    a.publish(lifecycle("call_started", "c1"), "a1")
    assert not a.has_listeners("c1")

    listener = b.listen("c1")
    await until(lambda: a.has_listeners("c1"), "the owning worker to see the remote listener")
    frame = bytes(range(256)) * 2
    a.publish_audio("c1", frame)
    assert await get(listener.queue) == frame

    a.end_call("c1")
    assert await get(listener.queue) is None  # the audio is over
    b.unlisten(listener)
    await until(lambda: not a.has_listeners("c1"), "the owning worker to stop sending")


async def test_own_calls_are_heard_locally_without_the_bus(hubs: tuple[BusHub, BusHub]) -> None:
    a, _ = hubs
    a.publish(lifecycle("call_started", "c1"), "a1")
    listener = a.listen("c1")
    assert a.has_listeners("c1")
    a.publish_audio("c1", b"\x01\x02")
    assert listener.queue.get_nowait() == b"\x01\x02"
    stats = a.bus.stats()
    assert stats["published"] + stats["buffered"] == 1  # only the lifecycle event goes out, never the audio
    a.unlisten(listener)


async def test_open_hub_is_the_plain_hub_without_a_bus_url(redis_server: RedisServer) -> None:
    plain = await open_hub("")
    assert type(plain) is Hub
    await close_hub(plain)
    shared = await open_hub(redis_server.url)
    assert isinstance(shared, BusHub)
    await close_hub(shared)
    await close_hub(shared)  # the app's shutdown and a test's cleanup may both close it
    assert shared.bus.stats()["subscriptions"] == 0
