"""``/v1/ingest/native``: a JSON ``start``, binary interleaved sample frames, a JSON ``stop`` (docs/integration.md)."""

from __future__ import annotations

import json
import uuid

import numpy as np

from audio.events import RATE
from audio.pcm import PcmError, StreamResampler, decode
from service.ingest.common import (
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED,
    CallAudio,
    CallStart,
    CallStop,
    Close,
    IngestError,
    IngestEvent,
    Reply,
    clean_id,
    refusal,
)

ENCODINGS = {"pcm16": 2, "mulaw": 1}
MIN_RATE, MAX_RATE = 8000, 48000
MAX_CHANNELS = 8
LEG_NAMES = ("customer", "agent")


def parse_json(text: str) -> dict[str, object]:
    try:
        msg = json.loads(text)
    except RecursionError:  # nesting deeper than the parser's stack: hostile, not a server fault
        raise IngestError("bad_json", "JSON nested too deeply") from None
    except ValueError:
        raise IngestError("bad_json", "text messages must be JSON objects") from None
    if not isinstance(msg, dict):
        raise IngestError("bad_json", "text messages must be JSON objects")
    return msg


class NativeIngest:
    """One native ingest connection's protocol state."""

    def __init__(self, max_frame_bytes: int = 256 * 1024) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.started = False
        self.stopped = False
        self._encoding = "pcm16"
        self._channels = 2
        self._legs = (0, 1)
        self._resamplers: tuple[StreamResampler, StreamResampler] | None = None
        self._flushed = False

    def receive(self, message: str | bytes) -> Reply:
        if isinstance(message, str):
            return self._text(message)
        return Reply(events=self._audio(message))

    def call_opened(self, call_id: str) -> list[dict[str, object]]:
        return [{"type": "started", "call_id": call_id}]

    def refuse(self, err: IngestError) -> Reply:
        return refusal(err)

    def _text(self, text: str) -> Reply:
        msg = parse_json(text)
        kind = msg.get("type")
        if kind == "start":
            if self.started:
                raise IngestError("already_started", "start may be sent only once", CLOSE_POLICY)
            start = self._start(msg)
            self.started = True
            return Reply(events=[start])
        if kind == "stop":
            if not self.started:
                raise IngestError("not_started", "stop before start", CLOSE_POLICY)
            self.stopped = True
            return Reply(events=[*self._flush(), CallStop("stop")], close=Close(CLOSE_NORMAL))
        raise IngestError("unknown_type", f"unknown message type {kind!r}: expected start or stop",
                          CLOSE_INVALID_DATA)

    def _start(self, msg: dict[str, object]) -> CallStart:
        call_id = msg.get("call_id") or uuid.uuid4().hex
        call_id = clean_id(call_id, "call_id")
        agent_id = clean_id(msg.get("agent_id"), "agent_id")
        team = None if msg.get("team") is None else clean_id(msg.get("team"), "team")
        encoding = msg.get("encoding", "pcm16")
        if not isinstance(encoding, str) or encoding not in ENCODINGS:  # a list or an object is unhashable
            raise IngestError("unsupported_encoding", f"encoding {encoding!r} is not supported: "
                              "use pcm16 or mulaw", CLOSE_UNSUPPORTED)
        rate = msg.get("sample_rate", RATE)
        if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
            raise IngestError("unsupported_sample_rate",
                              f"sample_rate must be an integer {MIN_RATE}..{MAX_RATE}, got {rate!r}",
                              CLOSE_UNSUPPORTED)
        channels = msg.get("channels", 2)
        if not isinstance(channels, int) or isinstance(channels, bool) or not 2 <= channels <= MAX_CHANNELS:
            raise IngestError("bad_channels", f"channels must be 2..{MAX_CHANNELS} (one per leg), "
                              f"got {channels!r}", CLOSE_UNSUPPORTED)
        cmap = msg.get("channel_map", list(LEG_NAMES))
        if (not isinstance(cmap, list) or len(cmap) != channels or not all(isinstance(c, str) for c in cmap)
                or cmap.count("customer") != 1 or cmap.count("agent") != 1):
            raise IngestError("bad_channel_map", "channel_map must name each channel, with exactly one "
                              "'customer' and one 'agent'")
        language = msg.get("language", "auto")
        if not isinstance(language, str) or not 2 <= len(language) <= 8:
            raise IngestError("bad_language", "language must be a code such as en, ru or auto")
        self._encoding, self._channels = str(encoding), channels
        self._legs = (cmap.index("customer"), cmap.index("agent"))
        self._resamplers = None if rate == RATE else (StreamResampler(rate, RATE), StreamResampler(rate, RATE))
        return CallStart(call_id=call_id, agent_id=agent_id, language=language, source="native", team=team)

    def _audio(self, data: bytes) -> list[IngestEvent]:
        if not self.started:
            raise IngestError("not_started", "binary audio before the start message", CLOSE_POLICY)
        if self.stopped:
            return []
        if len(data) > self.max_frame_bytes:
            raise IngestError("frame_too_big", f"audio frames may be at most {self.max_frame_bytes} bytes",
                              CLOSE_TOO_BIG)
        frame = ENCODINGS[self._encoding] * self._channels
        if len(data) % frame:
            raise IngestError("bad_frame", f"a frame of {len(data)} bytes does not hold whole "
                              f"{self._channels}-channel {self._encoding} samples")
        try:
            rows = decode(data, self._encoding).reshape(-1, self._channels)
        except PcmError as e:
            raise IngestError("bad_frame", str(e)) from None
        if not len(rows):
            return []
        if self._resamplers is None:  # the wire's rows are the call's: customer, agent as sent, or picked out
            stereo = rows if self._legs == (0, 1) and self._channels == 2 else rows[:, self._legs]
            return [CallAudio(stereo)]
        cust = self._resamplers[0].push(rows[:, self._legs[0]])
        agent = self._resamplers[1].push(rows[:, self._legs[1]])
        n = min(len(cust), len(agent))  # the two resamplers run in lockstep, so n equals both
        return [CallAudio.of_legs(cust[:n], agent[:n])] if n else []

    def flush(self) -> list[IngestEvent]:
        """The resamplers' tail, at the end of the stream (a stop, or a dropped connection)."""
        return self._flush()

    def _flush(self) -> list[IngestEvent]:
        # Once only: the resamplers refuse input after their last (a stop, then the connection's end).
        if self._resamplers is None or self._flushed:
            return []
        self._flushed = True
        empty = np.zeros(0, dtype=np.int16)
        cust, agent = (r.push(empty, last=True) for r in self._resamplers)
        n = min(len(cust), len(agent))
        return [CallAudio.of_legs(cust[:n], agent[:n])] if n else []
