"""``/v1/ingest/twilio``: Twilio Media Streams, ``<Start><Stream track="both_tracks">``.

Twilio's reference: https://www.twilio.com/docs/voice/media-streams/websocket-messages

Both tracks arrive as separate 20 ms mu-law ``media`` messages on one socket: ``inbound`` is the customer,
``outbound`` the agent. They are aligned by ``media.timestamp`` (milliseconds of stream time), never by
arrival order or ``chunk``: lost audio shows up as a timestamp jump and is filled with silence, so the
call's clock never drifts from the sender's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

import numpy as np

from audio.events import RATE
from audio.pcm import mulaw_decode
from service.core import auth
from service.ingest.common import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED,
    STEP_SAMPLES,
    CallAudio,
    CallStart,
    CallStop,
    Close,
    IngestError,
    IngestEvent,
    Int16,
    Reply,
    clean_id,
    clean_team,
    refusal,
)
from service.ingest.native import parse_json

SAMPLES_PER_MS = RATE // 1000
TRACK_LEG = {"inbound": 0, "outbound": 1}
MAX_LEAD_S = 1.0
"""How far one track may run ahead before the other is presumed silent (a one-track fork, a stalled leg)."""
MAX_GAP_S = 60.0
"""A timestamp jump longer than this is a broken sender, not lost packets."""
MAX_PAYLOAD = 8000
"""One second of mu-law; Twilio sends 160 bytes."""


class TrackAligner:
    """Places per-track sample runs on a shared timeline and releases them as aligned pairs.

    ``put(track, start, pcm)`` with ``start`` in samples; ``take()`` returns what both tracks have covered
    (or what the lagging one can no longer deliver in time, as silence), the two legs stacked into one
    ``CallAudio``. This is the only place Twilio audio waits: what it releases goes to the analysis as is.
    """

    def __init__(self, tracks: int = 2, max_lead: int = int(MAX_LEAD_S * RATE)) -> None:
        self.max_lead = max_lead
        self.frontier = 0
        self._bufs: list[list[Int16]] = [[] for _ in range(tracks)]
        self._ends = [0] * tracks
        self.gap_samples = 0
        self.late_samples = 0

    def put(self, track: int, start: int, pcm: Int16) -> None:
        end = self._ends[track]
        if start < end:  # a duplicate or reordered frame: what it covers has been placed or released
            self.late_samples += min(end - start, len(pcm))
            pcm = pcm[end - start:]
            start = end
        if start > end:
            self.gap_samples += start - end
            self._bufs[track].append(np.zeros(start - end, dtype=np.int16))
        if len(pcm):
            self._bufs[track].append(pcm)
        self._ends[track] = start + len(pcm)

    def take(self, flush: bool = False, at_least: int = 0) -> CallAudio | None:
        """What both tracks have covered; unless ``flush``, only once that is ``at_least`` samples."""
        ready = max(self._ends) if flush else max(min(self._ends), max(self._ends) - self.max_lead)
        n = ready - self.frontier
        if n <= 0 or (n < at_least and not flush):
            return None
        legs = [self._pop(i, n) for i in range(len(self._bufs))]
        self.frontier = ready
        return CallAudio.of_legs(legs[0], legs[1])

    def _pop(self, track: int, n: int) -> Int16:
        have = self._ends[track] - self.frontier
        if have < n:  # the lagging track is declared silent up to the frontier
            self._bufs[track].append(np.zeros(n - have, dtype=np.int16))
            self._ends[track] = self.frontier + n
        joined = np.concatenate(self._bufs[track]) if self._bufs[track] else np.zeros(0, dtype=np.int16)
        out, rest = joined[:n], joined[n:]
        self._bufs[track] = [rest] if len(rest) else []
        return out


class TwilioIngest:
    """One Twilio media stream's protocol state.

    ``token_secret``: without a Twilio auth token to check the upgrade's signature, the stream must carry an
    ingest token signed with this secret instead, as a ``<Parameter name="token">`` (Twilio stream URLs
    cannot carry a query string)."""

    def __init__(self, default_agent_id: str = "unknown", default_language: str = "auto",
                 token_secret: str | None = None) -> None:
        self.default_agent_id, self.default_language = default_agent_id, default_language
        self.token_secret = token_secret
        self.started = False
        self.stopped = False
        self.stream_sid = ""
        self.aligner = TrackAligner()

    def receive(self, message: str | bytes) -> Reply:
        if not isinstance(message, str):
            raise IngestError("binary_not_allowed", "Twilio Media Streams sends text frames only",
                              CLOSE_UNSUPPORTED)
        msg = parse_json(message)
        event = msg.get("event")
        if event == "connected":
            return Reply()
        if event == "start":
            return Reply(events=[self._start(msg)])
        if event == "media":
            return Reply(events=self._media(msg))
        if event == "stop":
            self.stopped = True
            return Reply(events=[*self.flush(), CallStop("stop")], close=Close(CLOSE_NORMAL))
        if not isinstance(event, str):
            raise IngestError("bad_message", "Twilio messages carry an 'event' field")
        # dtmf and mark come only on bidirectional streams; never log a DTMF digit (card data). Other
        # events are ignored so that a message type Twilio adds later does not end a live call.
        return Reply()

    def call_opened(self, call_id: str) -> list[dict[str, object]]:
        return []

    def refuse(self, err: IngestError) -> Reply:
        return refusal(err)

    def flush(self) -> list[IngestEvent]:
        """Whatever audio is held back, at the end of the stream (a stop, or a dropped connection)."""
        last = self.aligner.take(flush=True)
        return [last] if last is not None else []

    def _start(self, msg: dict[str, object]) -> CallStart:
        if self.token_secret is not None:
            start = msg.get("start")
            params = start.get("customParameters") if isinstance(start, dict) else None
            token = params.get("token") if isinstance(params, dict) else None
            if not auth.allows(self.token_secret, token if isinstance(token, str) else None, "ingest"):
                raise IngestError("unauthorized", "customParameters.token is not a valid ingest token",
                                  CLOSE_POLICY)
        if self.started:
            raise IngestError("already_started", "start may be sent only once", CLOSE_POLICY)
        start = msg.get("start")
        if not isinstance(start, dict):
            raise IngestError("bad_start", "start message without a start object")
        fmt = start.get("mediaFormat") or {}
        if not isinstance(fmt, dict) or fmt.get("encoding", "audio/x-mulaw") != "audio/x-mulaw" \
                or fmt.get("sampleRate", RATE) != RATE:
            raise IngestError("unsupported_media_format", "only audio/x-mulaw at 8000 Hz is supported",
                              CLOSE_UNSUPPORTED)
        params = start.get("customParameters") or {}
        if not isinstance(params, dict):
            raise IngestError("bad_start", "customParameters must be an object")
        self.stream_sid = clean_id(start.get("streamSid") or msg.get("streamSid"), "streamSid")
        call_id = clean_id(start.get("callSid") or self.stream_sid, "callSid")
        agent_id = clean_id(params.get("agent_id") or self.default_agent_id, "agent_id")
        language = params.get("language") or self.default_language
        if not isinstance(language, str) or not 2 <= len(language) <= 8:
            raise IngestError("bad_language", "customParameters.language must be a code such as en or auto")
        team = clean_team(params.get("team"), "team")
        self.started = True
        return CallStart(call_id=call_id, agent_id=agent_id, language=language, source="twilio", team=team)

    def _media(self, msg: dict[str, object]) -> list[IngestEvent]:
        if not self.started:
            raise IngestError("not_started", "media before start", CLOSE_POLICY)
        if self.stopped:
            return []
        media = msg.get("media")
        if not isinstance(media, dict):
            raise IngestError("bad_media", "media message without a media object")
        track = TRACK_LEG.get(str(media.get("track")))
        if track is None:
            raise IngestError("bad_track", f"unknown track {media.get('track')!r}: "
                              "expected inbound or outbound")
        try:
            ts = int(str(media.get("timestamp")))
            payload = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (ValueError, binascii.Error):
            raise IngestError("bad_media", "media.timestamp must be milliseconds, payload base64") from None
        if len(payload) > MAX_PAYLOAD:
            raise IngestError("frame_too_big", f"media payload of {len(payload)} bytes", CLOSE_TOO_BIG)
        start = ts * SAMPLES_PER_MS
        if ts < 0 or start - self.aligner.frontier > MAX_GAP_S * RATE:
            raise IngestError("bad_timestamp", f"media.timestamp {ts} is off by more than {MAX_GAP_S} s")
        self.aligner.put(track, start, mulaw_decode(payload))
        # Twilio sends a message per leg every 20 ms: joining and passing on each pair costs more than analysing it.
        ready = self.aligner.take(at_least=STEP_SAMPLES)
        return [ready] if ready is not None else []


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 over the URL plus the sorted name+value pairs."""
    data = url + "".join(k + v for k, v in sorted((params or {}).items()))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def check_twilio_signature(auth_token: str, url: str, signature: str | None) -> bool:
    """The websocket upgrade is signed over its ``wss://`` URL with no body parameters."""
    if not signature:
        return False
    expected = twilio_signature(auth_token, url).encode()
    return hmac.compare_digest(expected, signature.encode("ascii", "replace"))
