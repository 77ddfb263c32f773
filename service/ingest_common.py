"""What every ingest protocol turns its wire messages into, and the error it raises on bad input.

Protocol parsers are sans-I/O: they take text or bytes and return these, so they are tested without sockets
and the websocket handlers stay thin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def to_dict(self) -> dict[str, str]:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class CallStart:
    call_id: str
    agent_id: str
    language: str = "auto"
    source: str = "native"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallAudio:
    """Aligned legs at 8 kHz, equal length."""

    customer: Int16
    agent: Int16


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


def silence(samples: int) -> CallAudio:
    z = np.zeros(samples, dtype=np.int16)
    return CallAudio(z, z.copy())


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
