"""The contract every ingest protocol keeps, what its messages turn into, and the error it raises on bad input.

A parser (``Parser``) is sans-I/O: ``receive`` takes one websocket message, text or bytes, and returns a
``Reply``: the messages to send back, the call events (``CallStart``, ``CallAudio``, ``CallGap``,
``CallUpdate``, ``CallStop``) and whether to close the socket (``Close``). Bad input raises ``IngestError``;
``refuse`` then says how the protocol tells the sender (an error message, AudioHook's ``disconnect``). One
socket loop, ``service.live.pump``, drives every parser through this, so the parsers are tested without
sockets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Int16 = NDArray[np.int16]

STEP_SAMPLES = 800
"""100 ms at 8 kHz: how much audio the live path gathers before analysing it. The core gives the same events
for any chunking, and an agent notices nothing of 100 ms, while per-20-ms steps cost five times the
overhead; an ingest that buffers anyway (Twilio's track alignment) hands audio on in these steps too."""

# Websocket close codes (RFC 6455 §7.4.1) used to tell a sender what it did wrong.
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013


MAX_MESSAGE = 300
"""Error messages quote what was sent; they are sent back and logged, so a long value is cut short."""


class IngestError(Exception):
    """Bad input from a sender: reported as ``{"type":"error","code","message"}``, then the socket closes."""

    def __init__(self, code: str, message: str, close_code: int = CLOSE_INVALID_DATA) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        super().__init__(message)
        self.code, self.message, self.close_code = code, message, close_code

    def to_dict(self) -> dict[str, object]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class CallStart:
    call_id: str
    agent_id: str
    language: str = "auto"
    source: str = "native"
    team: str | None = None
    """The agent's team, where the sender names one (``clean_id``); the store files the agent under it when the
    call ends, unless a supervisor set the agent's team."""


@dataclass(frozen=True, slots=True)
class CallAudio:
    """Both legs at 8 kHz, aligned: an ``(n, 2)`` int16 array, one row per sample, customer then agent.

    Interleaved because that is what the wire mostly carries (native, AudioHook) and what listeners and
    recordings take: the legs are stacked once at ingest (or never) and split once, for the analysis."""

    frames: Int16

    @classmethod
    def of_legs(cls, customer: Int16, agent: Int16) -> CallAudio:
        return cls(np.stack([customer, agent], axis=1))

    @property
    def samples(self) -> int:
        """Samples per leg."""
        return len(self.frames)

    @property
    def customer(self) -> Int16:
        return self.frames[:, 0]

    @property
    def agent(self) -> Int16:
        return self.frames[:, 1]


@dataclass(frozen=True, slots=True)
class CallGap:
    """Call time the sender accounts for but did not send (AudioHook's ``discarded``), in samples per leg."""

    samples: int


@dataclass(frozen=True, slots=True)
class CallUpdate:
    language: str


@dataclass(frozen=True, slots=True)
class CallStop:
    reason: str = "end"


IngestEvent = CallStart | CallAudio | CallGap | CallUpdate | CallStop


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket with ``code`` once the replies are sent. With ``grace_s``, first give the sender that
    long to end the session itself (AudioHook's ``close`` after our ``disconnect``): its messages still go
    to the parser, and its hang-up ends the wait."""

    code: int
    grace_s: float = 0.0


@dataclass(slots=True)
class Reply:
    """What a parser makes of one message: send ``messages`` (JSON objects), apply ``events`` to the call
    (before sending: a call that cannot open is refused instead), then close if ``close`` says so."""

    messages: list[dict[str, object]] = field(default_factory=list)
    events: list[IngestEvent] = field(default_factory=list)
    close: Close | None = None


def message_text(msg: dict[str, object]) -> str:
    """A reply as the text frame that carries it."""
    return json.dumps(msg, separators=(",", ":"))


def refusal(err: IngestError) -> Reply:
    """How the native and Twilio protocols refuse: the error as a message, then the close code it names."""
    return Reply([err.to_dict()], close=Close(err.close_code))


class Parser(Protocol):
    """One ingest connection's protocol state, driven by ``service.live.pump``."""

    @property
    def started(self) -> bool:
        """The sender has begun (a call or session is open): from now on silence is an idle timeout, not a
        start timeout."""
        ...

    def receive(self, message: str | bytes) -> Reply:
        """One websocket message; raises IngestError when it is bad input."""
        ...

    def call_opened(self, call_id: str) -> list[dict[str, object]]:
        """What to tell the sender once its ``CallStart`` has become a call (which may carry another id)."""
        ...

    def refuse(self, err: IngestError) -> Reply:
        """How this protocol ends a connection over ``err`` (the parser's own, or the call's)."""
        ...

    def flush(self) -> list[IngestEvent]:
        """Audio still held, at the end of the stream (a stop, or a dropped connection)."""
        ...


def clean_team(value: object, what: str = "team") -> str | None:
    """An optional team name: absent (None or ``""``) is None; anything else must pass ``clean_id``."""
    return None if value is None or value == "" else clean_id(value, what)


def clean_id(value: object, what: str, max_len: int = 128) -> str:
    """Ids end up in URLs, file names and logs: keep them short and printable."""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise IngestError("bad_" + what, f"{what} must be a non-empty string of at most {max_len} characters")
    if not all(c.isalnum() or c in "-_.:@" for c in value):
        raise IngestError("bad_" + what, f"{what} may only contain letters, digits and - _ . : @")
    if len(value.encode()) > max_len:  # letters beyond ASCII take 2-4 bytes: the id names files (255 bytes)
        raise IngestError("bad_" + what, f"{what} may be at most {max_len} bytes in UTF-8")
    if value.startswith("."):
        # "." and ".." name directories in a recording path; a leading dot would hide the file.
        raise IngestError("bad_" + what, f"{what} may not start with a dot")
    return value
