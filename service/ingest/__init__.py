"""The ingest protocols as sans-I/O parsers with one contract (``common.Parser``): a parser takes one websocket
message (bytes or text) and returns a ``common.Reply`` (the messages to send back, the call events and audio
it carried, whether to close), or raises ``common.IngestError`` with a close code; ``refuse`` says how its
protocol ends a connection over such an error.

``native`` (our protocol), ``twilio`` (Media Streams), ``audiohook`` (Genesys AudioHook Monitor v2);
``common`` holds the contract and what they share (``CallStart``, ``CallAudio``, close codes); ``refuse``
turns a refused upgrade into an HTTP status with a JSON body. No sockets, no clocks beyond what a message
carries; imports ``service.core`` only. The one socket loop that drives every parser is ``service.live.pump``.
"""
