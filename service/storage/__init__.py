"""What is kept: calls, events, redacted transcripts, alerts, notes (``sqlite.Store`` on one machine,
``postgres.PgStore`` when workers share a database, chosen by ``backends.open_store``), written in order by
one task off the event loop (``writer.Writer``), and recordings (``recording``). Imports ``service.core`` and
``service.analysis`` (for the redaction the store applies) only.
"""
