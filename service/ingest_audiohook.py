"""``/v1/ingest/audiohook``: Genesys Cloud AudioHook Monitor, protocol v2 (research/protocols.md §2).

The server side of the session as a sans-I/O object: ``receive_text`` returns the replies to send and the
call events for the pipeline. Audio is PCMU stereo, ``external`` (customer) then ``internal`` (agent),
sample-interleaved. Time is kept as samples: paused or discarded audio advances the call timeline with
silence, so alerts and transcripts keep lining up with the client's ``position``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from audio.pcm import deinterleave, mulaw_decode, pcm16_decode
from service.ingest_common import (
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CallAudio,
    CallStart,
    CallStop,
    CallUpdate,
    IngestError,
    IngestEvent,
    clean_id,
    silence,
)
from service.ingest_native import parse_json

RATE = 8000
PROBE_ID = "00000000-0000-0000-0000-000000000000"
MAX_SILENCE_S = 3600.0
SIGNED_COMPONENTS = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
                     "audiohook-correlation-id", "x-api-key")
MAX_SIGNATURE_AGE_S = 10
MIN_NONCE_LEN = 22
_DURATION = re.compile(r"^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def parse_duration(text: object) -> float:
    """ISO-8601 durations as AudioHook writes them (``PT3.80575S``), in seconds."""
    m = _DURATION.match(text) if isinstance(text, str) else None
    if m is None or text == "PT":
        raise IngestError("bad_duration", f"not an ISO-8601 duration: {text!r}")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def format_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


@dataclass(frozen=True, slots=True)
class MediaFormat:
    format: str
    channels: tuple[str, ...]
    rate: int

    def to_dict(self) -> dict[str, object]:
        return {"type": "audio", "format": self.format, "channels": list(self.channels), "rate": self.rate}


STEREO = ("external", "internal")
PREFERRED = (MediaFormat("PCMU", STEREO, RATE), MediaFormat("L16", STEREO, RATE))


def pick_format(offered: object) -> MediaFormat | None:
    """Exactly one of the offered formats: stereo first (both legs separate), PCMU before L16."""
    if not isinstance(offered, list):
        return None
    parsed = set()
    for m in offered:
        if isinstance(m, dict) and isinstance(m.get("channels"), list):
            parsed.add(MediaFormat(str(m.get("format")), tuple(str(c) for c in m["channels"]),
                                   int(m.get("rate", 0)) if isinstance(m.get("rate"), int) else 0))
    return next((p for p in PREFERRED if p in parsed), None)


@dataclass
class Reply:
    """What the handler must do after a message: send these, then maybe close."""

    messages: list[dict[str, object]] = field(default_factory=list)
    events: list[IngestEvent] = field(default_factory=list)
    close: bool = False


class AudioHookSession:
    def __init__(self, session_id: str, organization_id: str = "", default_agent_id: str = "unknown") -> None:
        self.session_id = session_id
        self.organization_id = organization_id
        self.default_agent_id = default_agent_id
        self.seq = 0
        self.clientseq = 0
        self.opened = False
        self.closed = False
        self.paused = False
        self.probe = False
        self.media: MediaFormat | None = None
        self.samples = 0
        """Per-leg samples of call time so far, received audio and inserted silence together."""
        self.discarded_s = 0.0

    def message(self, kind: str, parameters: dict[str, object] | None = None) -> dict[str, object]:
        self.seq += 1
        return {"version": "2", "type": kind, "seq": self.seq, "clientseq": self.clientseq,
                "id": self.session_id, "parameters": parameters or {}}

    def receive_text(self, text: str) -> Reply:
        msg = parse_json(text)
        kind, seq = msg.get("type"), msg.get("seq")
        if not isinstance(seq, int) or seq != self.clientseq + 1:
            raise IngestError("bad_seq", f"seq must count up from 1: expected {self.clientseq + 1}, "
                              f"got {seq!r}")
        if msg.get("id") != self.session_id:
            raise IngestError("bad_id", "message id must equal the Audiohook-Session-Id header", CLOSE_POLICY)
        self.clientseq = seq
        params = msg.get("parameters") or {}
        if not isinstance(params, dict):
            raise IngestError("bad_parameters", "parameters must be an object")
        if kind == "open":
            return self._open(params)
        if not self.opened:
            raise IngestError("not_opened", f"{kind!r} before open", CLOSE_POLICY)
        if kind == "ping":
            return Reply([self.message("pong")])
        if kind == "close":
            self.closed = True
            stop = [] if self.probe else [CallStop(str(params.get("reason", "end")))]
            return Reply([self.message("closed")], list(stop))
        if kind == "paused":
            self.paused = True
            return Reply()
        if kind in ("resumed", "discarded"):
            if kind == "resumed":
                self.paused = False
            return Reply(events=self._discarded(params.get("discarded", "PT0S")))
        if kind == "update":
            lang = params.get("language")
            return Reply(events=[CallUpdate(lang)] if isinstance(lang, str) and lang else [])
        if kind == "error":
            return Reply()  # the client reports and then closes; nothing to answer
        raise IngestError("unknown_type", f"unknown message type {kind!r}")

    def _open(self, params: dict[str, object]) -> Reply:
        if self.opened:
            raise IngestError("already_opened", "open may be sent only once", CLOSE_POLICY)
        org = params.get("organizationId")
        if self.organization_id and org != self.organization_id:
            raise IngestError("bad_organization", "organizationId differs from the Audiohook-Organization-Id "
                              "header", CLOSE_POLICY)
        conversation = params.get("conversationId")
        if not isinstance(conversation, str) or not conversation:
            raise IngestError("bad_open", "open needs a conversationId")
        self.media = pick_format(params.get("media"))
        if self.media is None:
            self.opened, self.closed = True, True
            info = "no offered media format is stereo PCMU or L16 at 8000 Hz"
            bye = self.message("disconnect", {"reason": "error", "info": info})
            return Reply([bye], close=True)
        self.opened = True
        self.probe = conversation == PROBE_ID
        reply = self.message("opened", {"startPaused": False, "media": [self.media.to_dict()]})
        if self.probe:  # the connection probe gets a correct opened/closed and never becomes a call
            return Reply([reply])
        language = params.get("language")
        participant = params.get("participant")
        agent_id = self.default_agent_id
        custom = params.get("customConfig")
        if isinstance(custom, dict) and isinstance(custom.get("agent_id"), str):
            agent_id = custom["agent_id"]
        participant_id = str(participant.get("id", "")) if isinstance(participant, dict) else ""
        start = CallStart(call_id=clean_id(conversation, "conversationId"),
                          agent_id=clean_id(agent_id, "agent_id"),
                          language=language if isinstance(language, str) and language else "auto",
                          source="audiohook",
                          metadata={"session_id": self.session_id, "participant": participant_id})
        return Reply([reply], [start])

    def _discarded(self, duration: object) -> list[IngestEvent]:
        seconds = parse_duration(duration)
        if seconds > MAX_SILENCE_S:
            raise IngestError("bad_duration", f"discarded {seconds} s is not plausible")
        if self.probe or seconds <= 0:
            return []
        self.discarded_s += seconds
        n = round(seconds * RATE)
        self.samples += n
        return [silence(n)]

    def receive_bytes(self, data: bytes, max_bytes: int = 256 * 1024) -> list[IngestEvent]:
        if not self.opened or self.media is None:
            raise IngestError("not_opened", "audio before opened", CLOSE_POLICY)
        if self.closed or self.probe:
            return []
        if len(data) > max_bytes:
            raise IngestError("frame_too_big", f"audio frames may be at most {max_bytes} bytes",
                              CLOSE_TOO_BIG)
        width = 1 if self.media.format == "PCMU" else 2
        if len(data) % (width * 2):
            raise IngestError("bad_frame",
                              f"{len(data)} bytes is not whole stereo {self.media.format} samples")
        pcm = mulaw_decode(data) if width == 1 else pcm16_decode(data)
        legs = deinterleave(pcm, 2)
        self.samples += legs.shape[1]
        # Audio sent while paused is still call time: analysing it is harmless, dropping it would skew.
        return [CallAudio(legs[0], legs[1])]


def signature_base(components: Mapping[str, str], params_line: str) -> str:
    lines = [f'"{name}": {components[name]}' for name in SIGNED_COMPONENTS]
    return "\n".join([*lines, f'"@signature-params": {params_line}'])


def sign(client_secret_b64: str, base: str) -> str:
    key = base64.b64decode(client_secret_b64)
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|(\d+))')


def check_request(headers: Mapping[str, str], target: str, authority: str, api_key: str, client_secret: str,
                  now: float) -> str | None:
    """``None`` when the upgrade may proceed, else the reason it may not (for the log, not the client).

    ``headers`` have lower-case names. A request must carry the configured API key; when a client secret is
    configured it must also carry a fresh HTTP message signature over the six components Genesys signs.
    """
    key = headers.get("x-api-key", "")
    if not api_key:
        return "no AudioHook API key is configured"
    if not hmac.compare_digest(key.encode("ascii", "replace"), api_key.encode()):
        return "wrong X-API-KEY"
    for name in ("audiohook-organization-id", "audiohook-session-id", "audiohook-correlation-id"):
        if not headers.get(name):
            return f"missing {name} header"
    if not client_secret:
        return None
    sig_input, signature = headers.get("signature-input", ""), headers.get("signature", "")
    m_in = re.match(r"^(\w+)=(\(.*?\))(.*)$", sig_input)
    m_sig = re.match(r"^(\w+)=:([A-Za-z0-9+/=]+):$", signature)
    if m_in is None or m_sig is None or m_in.group(1) != m_sig.group(1):
        return "missing or malformed signature"
    covered = tuple(c.strip('"') for c in m_in.group(2)[1:-1].split())
    params = {k: q or n for k, q, n in _PARAM.findall(m_in.group(3))}
    if covered != SIGNED_COMPONENTS:
        return "signature does not cover the required components"
    if params.get("keyid") != api_key or params.get("alg", "hmac-sha256") != "hmac-sha256":
        return "signature keyid or alg is wrong"
    if len(params.get("nonce", "")) < MIN_NONCE_LEN:
        return "signature nonce is too short"
    try:
        created = int(params.get("created", ""))
        expires = int(params.get("expires", str(created + MAX_SIGNATURE_AGE_S)))
    except ValueError:
        return "signature times are not integers"
    if not created - 2 <= now <= min(expires, created + MAX_SIGNATURE_AGE_S):
        return "signature is stale or from the future"
    components = {"@request-target": target, "@authority": authority,
                  **{name: headers.get(name, "") for name in SIGNED_COMPONENTS[2:]}}
    base = signature_base(components, m_in.group(2) + m_in.group(3))
    try:
        expected = sign(client_secret, base)
    except (ValueError, binascii.Error):
        return "the configured client secret is not base64"
    if not hmac.compare_digest(expected.encode(), m_sig.group(2).encode()):
        return "bad signature"
    return None


def audiohook_json(msg: dict[str, object]) -> str:
    return json.dumps(msg, separators=(",", ":"))
