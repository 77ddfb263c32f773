"""The live service's moving parts: ``pump`` reads an ingest socket and feeds its protocol parser,
``pipeline`` runs one call (monitor, alerts, fan-out, storage, recording), ``transcription`` schedules the
utterances of every call onto one transcriber off the event loop, ``idle`` closes silent sockets and
``priority`` keeps transcription from starving the signal path. Imports ``core``, ``analysis``, ``ingest``,
``fanout`` and ``storage``.
"""
