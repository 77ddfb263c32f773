"""What is kept: calls, events, redacted transcripts, alerts, notes (the queries once in ``sql``; ``sqlite.Store``
on one machine, ``postgres.PgStore`` when workers share a database, chosen by ``backends.open_store``), written
in order by one task off the event loop (``writer.Writer``), and recordings (``recording``). Imports
``service.core`` and ``service.analysis`` (for the typed events and the redaction the store applies) only.
"""
