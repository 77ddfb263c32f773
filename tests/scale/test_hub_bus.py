"""Two workers' hubs over a real Redis: screens on one see the calls, alerts and audio of the other."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from service.analysis.wire import CallChanged, CallEvent
from service.fanout.bus import Subscription
from service.fanout.bus_hub import BusHub, close_hub, open_hub
from service.fanout.hub import Hub, LiveCallView
from service.fanout.redis_bus import RedisBus
from tests.scale.local_bus import LocalBus
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


def lifecycle(kind: Any, call_id: str, agent_id: str = "a1", duration: float = 0.0) -> CallEvent:
    call = {"id": call_id, "agent_id": agent_id, "status": "live" if kind != "call_ended" else "completed",
            "duration": duration}
    return CallEvent(call_id, CallChanged(kind, duration, call))


def alert(call_id: str, n: int) -> CallEvent:
    return CallEvent.from_wire({"type": "alert", "id": f"{call_id}-{n}", "rule": "interruption",
                                "severity": "warning", "t": float(n), "call_id": call_id})


async def get(queue: asyncio.Queue[CallEvent | None]) -> dict[str, Any]:
    """The next event's wire form, as a screen would receive it."""
    ev = await asyncio.wait_for(queue.get(), WAIT_S)
    assert ev is not None, "cut off"
    return json.loads(ev.json)  # type: ignore[no-any-return]


async def test_screens_on_either_worker_see_a_call_once(hubs: tuple[BusHub, BusHub]) -> None:
    a, b = hubs
    board_a, board_b = a.subscribe("supervisor"), b.subscribe("supervisor")
    agent_b, other_agent_b = b.subscribe("agent", "a1"), b.subscribe("agent", "a2")

    started, first = lifecycle("call_started", "c1"), alert("c1", 1)
    a.publish(started, "a1")
    a.publish(first, "a1")
    assert [await get(board_b.queue), await get(board_b.queue)] == [started.wire, first.wire]
    assert [await get(agent_b.queue), await get(agent_b.queue)] == [started.wire, first.wire]
    assert b.is_live_elsewhere("c1") and not a.is_live_elsewhere("c1")

    # Redis keeps one channel in order: once A sees B's marker, any echo of A's own events would be in front.
    marker = lifecycle("call_started", "c2", "a2")
    b.publish(marker, "a2")
    assert [await get(board_a.queue) for _ in range(3)] == [started.wire, first.wire, marker.wire]
    assert board_a.queue.empty()
    assert await get(other_agent_b.queue) == marker.wire
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
    assert await asyncio.wait_for(listener.queue.get(), WAIT_S) == frame

    a.end_call("c1")
    assert await asyncio.wait_for(listener.queue.get(), WAIT_S) is None  # the audio is over
    b.unlisten(listener)
    await until(lambda: not a.has_listeners("c1"), "the owning worker to stop sending")


async def test_own_calls_are_heard_locally_without_the_bus(hubs: tuple[BusHub, BusHub]) -> None:
    a, _ = hubs
    def sent() -> int:
        stats = a.bus.stats()
        return stats["published"] + stats["buffered"]

    before = sent()  # heartbeats, every 5 s
    a.publish(lifecycle("call_started", "c1"), "a1")
    listener = a.listen("c1")
    assert a.has_listeners("c1")
    a.publish_audio("c1", b"\x01\x02")
    assert listener.queue.get_nowait() == b"\x01\x02"
    assert sent() == before + 1  # only the lifecycle event goes out, never the audio
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


async def test_a_worker_that_goes_silent_has_its_calls_ended_on_the_others(redis_server: RedisServer) -> None:
    a, b = (BusHub(RedisBus(redis_server.url), heartbeat_s=0.1, timeout_s=0.6) for _ in range(2))
    late = BusHub(RedisBus(redis_server.url), heartbeat_s=0.1, timeout_s=0.6)
    try:
        await a.start()
        await b.start()
        board = b.subscribe("supervisor")
        a.publish(lifecycle("call_started", "c1"), "a1")
        assert (await get(board.queue))["type"] == "call_started"
        await late.start()  # after the call started: it learns of it from A's heartbeat
        await until(lambda: "c1" in late.remote_calls, "a worker that started later to learn of the call")

        for task in tuple(a._tasks):  # A dies: no call_ended, no more heartbeats
            task.cancel()
        ended = await get(board.queue)
        assert ended["type"] == "call_ended" and ended["call_id"] == "c1"
        assert ended["call"]["status"] == "interrupted" and ended["call"]["ended"] is not None
        assert b.remote_calls == {} and b.expired == 1
        await until(lambda: not late.remote_calls, "the late worker to forget it too")
    finally:
        for hub in (a, b, late):
            await hub.close()
            await hub.bus.close()


async def test_silence_counts_only_while_this_worker_is_listening() -> None:
    hub = BusHub(LocalBus(), heartbeat_s=1.0, timeout_s=10.0)
    hub._events = Subscription("callwatch.events")  # not started: the test drives the clock
    board = hub.subscribe("supervisor")
    hub._heard["other"] = 0.0
    hub._track_remote("other", lifecycle("call_started", "c1"), "a1")
    hub._events.active = False  # our own connection to the bus is down: the others may be fine
    assert hub.expire_silent(now=100.0) == []
    hub._events.active = True
    assert hub.expire_silent(now=101.0) == []  # back, but not for long enough to call anyone silent
    assert hub.expire_silent(now=110.0) == []
    assert hub.expire_silent(now=111.5) == ["c1"]
    ended = board.queue.get_nowait()
    assert ended is not None and ended.type == "call_ended" and ended.wire["call"]["status"] == "interrupted"
    assert hub.expire_silent(now=200.0) == [] and "other" not in hub._heard


def test_a_heartbeat_lists_exactly_the_calls_its_worker_follows() -> None:
    hub = BusHub(LocalBus())
    hub._track_remote("w1", lifecycle("call_started", "c1"), "a1")
    hub._track_remote("w1", lifecycle("call_started", "c2"), "a1")
    hub._track_remote("w2", lifecycle("call_started", "c3"), "a2")
    # c1's call_ended was lost; c4 started before this worker subscribed.
    hub._reconcile("w1", [{"call": {"id": "c2", "agent_id": "a1"}, "agent_id": "a1"},
                          {"call": {"id": "c4", "agent_id": "a1"}, "agent_id": "a1"}, "junk"])
    assert sorted(hub.remote_calls) == ["c2", "c3", "c4"]


async def test_a_screen_on_another_worker_is_shown_the_calls_in_progress_there(
        hubs: tuple[BusHub, BusHub]) -> None:
    """Bug 1 of issue 14: a screen that connects to a worker which does not own the call (an agent's reconnect
    lands elsewhere) is first shown every call in progress it may see, not just the calls of that worker."""
    a, b = hubs
    a.publish(lifecycle("call_started", "c1", "a1"), "a1")
    a.publish(lifecycle("call_updated", "c1", "a1", duration=12.5), "a1")
    a.publish(lifecycle("call_started", "c2", "a2"), "a2")
    await until(lambda: b.is_live_elsewhere("c1") and b.is_live_elsewhere("c2"), "B to hear of A's calls")
    here = [LiveCallView({"id": "c3", "agent_id": "a1", "status": "live"}, "a1", 3.0)]

    agent = b.subscribe("agent", "a1")
    shown = [json.loads(ev.json) for ev in b.snapshot(agent, here)]
    assert [(e["type"], e["call_id"], e["t"]) for e in shown] == [("call_started", "c3", 3.0),
                                                                  ("call_started", "c1", 12.5)]
    assert shown[1]["call"] == {"id": "c1", "agent_id": "a1", "status": "live", "duration": 12.5}
    board = b.subscribe("supervisor")
    assert {ev.call_id for ev in b.snapshot(board, here)} == {"c1", "c2", "c3"}
    assert [ev.call_id for ev in b.snapshot(b.subscribe("supervisor", call_id="c2"), here)] == ["c2"]
    # The worker that owns the calls takes them from its pipeline (here), never twice.
    assert [ev.call_id for ev in a.snapshot(a.subscribe("agent", "a1"), [])] == []

    a.publish(lifecycle("call_ended", "c1", "a1"), "a1")
    await until(lambda: not b.is_live_elsewhere("c1"), "B to hear that c1 ended")
    assert [ev.call_id for ev in b.snapshot(agent, [])] == []


def test_one_process_shows_only_its_own_calls() -> None:
    hub = Hub()
    here = [LiveCallView({"id": "c1", "agent_id": "a1"}, "a1", 1.0),
            LiveCallView({"id": "c2", "agent_id": "a2"}, "a2", 2.0)]
    assert [ev.wire for ev in hub.snapshot(hub.subscribe("agent", "a2"), here)] == [
        {"type": "call_started", "t": 2.0, "call": {"id": "c2", "agent_id": "a2"}, "call_id": "c2"}]
    assert hub.calls_elsewhere() == [] and not hub.is_live_elsewhere("c1")
