"""The ingest protocols as sans-I/O parsers: a parser takes one websocket message (bytes or text) and returns
what to reply, the audio it carried and whether to close, or raises ``common.IngestError`` with a close code.

``native`` (our protocol), ``twilio`` (Media Streams), ``audiohook`` (Genesys AudioHook Monitor v2);
``common`` holds what they share (``CallStart``, ``Audio``, close codes); ``refuse`` turns a refused upgrade
into an HTTP status with a JSON body. No sockets, no clocks beyond what a message carries; imports
``service.core`` only. The socket side is ``service.live.pump``.
"""
