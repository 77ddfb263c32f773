"""The writer's shutdown and reads: everything queued is stored, unless the database stops answering."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from service.storage.writer import Writer


class HangingStore:
    """Stores batches until ``hang`` is set; then a write blocks like a statement to a vanished host."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.written: list[tuple[str, Any]] = []

    def write(self, ops: Sequence[tuple[str, Any]]) -> None:
        if self.hang.is_set():
            self.release.wait(timeout=30)
        self.written.extend(ops)


async def test_close_writes_everything_queued() -> None:
    store = HangingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    writer.start()
    for k in range(5):
        writer.db("event", k)
    assert await writer.close(timeout_s=10) == 0
    assert [arg for _, arg in store.written] == [0, 1, 2, 3, 4]


async def test_close_gives_up_on_a_database_that_stopped_answering() -> None:
    store = HangingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    writer.start()
    writer.db("event", 0)
    await writer.flush()
    store.hang.set()
    writer.db("event", 1)
    writer.db("event", 2)
    try:
        left = await writer.close(timeout_s=0.2)
    finally:
        store.release.set()  # let the stuck thread go, as the TCP timeout would
    assert left >= 1
    assert [arg for _, arg in store.written][:1] == [0]


async def test_a_read_waits_for_queued_writes_but_not_for_a_stuck_database() -> None:
    store = HangingStore()
    writer = Writer(store)  # type: ignore[arg-type]
    writer.start()
    writer.db("event", 0)
    assert await writer.settle(10) is True
    assert [arg for _, arg in store.written] == [0]
    store.hang.set()
    writer.db("event", 1)
    try:
        assert await writer.settle(0.1) is False  # gave up: the read goes ahead with what is stored
        assert [arg for _, arg in store.written] == [0]
    finally:
        store.release.set()
    store.hang.clear()
    assert await writer.settle(10) is True  # the abandoned wait left nothing behind that breaks the writer
    assert [arg for _, arg in store.written] == [0, 1]
    assert await writer.close(timeout_s=10) == 0
