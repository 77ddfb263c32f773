"""callwatch's asyncio edge: the live service and the command line around the pure cores in ``audio`` and ``models``.

Packages, each allowed to import only those listed before it (``tests/test_layers.py`` checks this):

- ``core``: configuration, credentials (tokens, secrets) and log hygiene; imports no other package here.
- ``analysis``: the per-call core shared by ``callwatch analyze`` and the live service (``CallMonitor``), the
  typed events it emits, redaction with call memory, and the alert engine.
- ``ingest``: the three wire protocols (native, Twilio Media Streams, Genesys AudioHook) as sans-I/O parsers.
- ``fanout``: delivery of live events and audio to screens, in one process (``Hub``) or across workers
  (``BusHub``), behind one interface (``Fanout``); it carries ``analysis.wire.CallEvent``.
- ``storage``: the database (SQLite or PostgreSQL), the single writer, recordings.
- ``live``: one call's pipeline, the socket pump that feeds it, and the transcription scheduler.
- ``web``: the Starlette application: REST, subscriber websockets, pages, OpenAPI, metrics.
- ``cli``: the ``callwatch`` subcommands (serve, analyze, replay, token, migrate).

One chunk of audio, socket to agent screen: ``live.pump`` (the socket) -> ``ingest.twilio`` (or ``native``,
``audiohook``: bytes to samples) -> ``live.pipeline`` -> ``analysis.monitor`` (the acoustic and text rules, and
the alert engine) -> ``fanout.hub`` -> ``web.subscribers`` (the agent's websocket).
"""
