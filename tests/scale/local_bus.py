"""An in-process ``Bus``: the bus contract without Redis, for tests of what runs on top of it. A deployment of
one worker needs no bus at all (``service.fanout.hub.Hub``)."""

from __future__ import annotations

from service.fanout.bus import DEFAULT_QUEUE_SIZE, Bus, Message, Payload, Subscription


class LocalBus(Bus):
    """Everything in this process."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self.published = 0

    def publish(self, channel: str, data: Payload) -> None:
        self.published += 1
        for sub in self._subs:
            if sub.matches(channel):
                sub.deliver(Message(channel, data))

    async def subscribe(self, pattern: str, queue_size: int = DEFAULT_QUEUE_SIZE) -> Subscription:
        sub = _LocalSubscription(self, pattern, queue_size)
        self._subs.append(sub)
        return sub

    async def subscribers(self, channel: str) -> int:
        return sum(1 for s in self._subs if s.exact and s.pattern == channel)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    async def close(self) -> None:
        for sub in tuple(self._subs):
            await sub.close()

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": sum(s.dropped for s in self._subs),
                "subscriptions": len(self._subs)}


class _LocalSubscription(Subscription):
    def __init__(self, bus: LocalBus, pattern: str, queue_size: int) -> None:
        super().__init__(pattern, queue_size)
        self._bus = bus

    async def close(self) -> None:
        self._bus._remove(self)
        self._end()
