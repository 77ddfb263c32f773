"""The per-call core: what a call means, independent of where its audio comes from.

``monitor.CallMonitor`` wraps ``audio.analyzer.CallAnalyzer`` and the text rules (``text_rules``: cues,
backchannels, speaking rate, redaction from ``models``) and emits typed events (``audio.events``,
``text_events``, ``redaction``); ``monitor.AlertEngine`` turns them into coaching alerts and the call's flags
(wording and limits in ``alert_rules``). ``callwatch analyze`` and the live pipeline use exactly this code.
Synchronous and free of I/O; imports ``audio``, ``models`` and ``service.core`` only.
"""
