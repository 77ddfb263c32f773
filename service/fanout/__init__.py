"""Delivery of live events and listen-in audio to whoever watches: ``hub.Hub`` in one process (the embedded
default), ``bus_hub.BusHub`` across workers over ``bus.Bus`` (``redis_bus.RedisBus``). Both present one
interface to the rest of the service (``hub.Fanout``); nobody waits for a slow screen. Imports
``service.core`` and the event envelope ``service.analysis.wire``.
"""
