"""``/v1/ingest/audiohook``: Genesys Cloud AudioHook Monitor, protocol v2
(https://developer.genesys.cloud/devapps/audiohook/protocol-reference).

The server side of the session as a sans-I/O parser (``service.ingest.common.Parser``): ``receive`` returns
the messages to send, the call events for the pipeline and when to close. Audio is PCMU (or L16) stereo,
``external`` (customer) and ``internal`` (agent) sample-interleaved in the order the open offered. Time is
kept as samples: paused or discarded audio advances the call timeline with silence, so alerts and
transcripts keep lining up with the client's ``position``.

Closing is a handshake. The client ends a session with ``close``, answered with ``closed``. We end one with
``disconnect`` (a refused media offer, bad input, a call that cannot go on): the client is then to send
``close``, answered with ``closed``, and hang up; a client that does not is closed on after
``CLOSE_GRACE_S``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from audio.events import RATE
from audio.pcm import mulaw_decode, pcm16_decode
from service.ingest.common import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CallAudio,
    CallGap,
    CallStart,
    CallStop,
    CallUpdate,
    Close,
    IngestError,
    IngestEvent,
    Reply,
    clean_id,
    clean_team,
)
from service.ingest.native import parse_json

log = logging.getLogger("callwatch.ingest")

CLOSE_GRACE_S = 5.0
"""After our ``disconnect``, how long the client gets to send ``close`` and end the session itself."""
PROBE_ID = "00000000-0000-0000-0000-000000000000"
MAX_SILENCE_S = 3600.0
SIGNED_COMPONENTS = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
                     "audiohook-correlation-id", "x-api-key")
MAX_SIGNATURE_AGE_S = 10
MIN_NONCE_LEN = 22
MAX_NONCES = 100_000
"""Nonces remembered at once: a signature lives at most MAX_SIGNATURE_AGE_S, so this many upgrades in that
time before the oldest is forgotten early (and a forgotten nonce is stale anyway a few seconds later)."""
VERSION = "2"
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8}){0,4}$")
MAX_REASON = 32
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
FORMATS = ("PCMU", "L16")


def pick_format(offered: object) -> MediaFormat | None:
    """Exactly one of the offered formats: stereo (both legs separate) in either channel order, PCMU before L16.
    The answer repeats the offer's channel order; the legs are then told apart by label, as Genesys's
    reference server does."""
    if not isinstance(offered, list):
        return None
    parsed = set()
    for m in offered:
        if isinstance(m, dict) and isinstance(m.get("channels"), list):
            rate = m.get("rate")
            parsed.add(MediaFormat(str(m.get("format")), tuple(str(c) for c in m["channels"]),
                                   rate if isinstance(rate, int) and not isinstance(rate, bool) else 0))
    wanted = [MediaFormat(f, order, RATE) for f in FORMATS for order in (STEREO, STEREO[::-1])]
    return next((p for p in wanted if p in parsed), None)


def language(value: object, what: str = "language") -> str:
    """A BCP 47 tag such as ``en-US``: stored and shown, so bounded and plain."""
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise IngestError("bad_language", f"{what} must be a language tag such as en-US")
    return value


class NonceCache:
    """Nonces of accepted signatures, kept for as long as a signature could still be fresh: a captured upgrade
    replayed within that time is refused. Per process: behind several workers a replay could reach another
    one within the same seconds (see docs/security.md)."""

    def __init__(self, ttl_s: float = MAX_SIGNATURE_AGE_S + 5, size: int = MAX_NONCES) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_use(self, nonce: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        while self._seen and (len(self._seen) >= self.size or next(iter(self._seen.values())) < now - self.ttl_s):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return False
        self._seen[nonce] = now
        return True


class AudioHookSession:
    """One AudioHook session's protocol state."""

    def __init__(self, session_id: str, organization_id: str = "", default_agent_id: str = "unknown",
                 max_frame_bytes: int = 256 * 1024) -> None:
        self.session_id = session_id
        self.organization_id = organization_id
        self.default_agent_id = default_agent_id
        self.max_frame_bytes = max_frame_bytes
        self.seq = 0
        self.clientseq = 0
        self.opened = False
        self.closed = False
        self.paused = False
        self.probe = False
        self.media: MediaFormat | None = None
        self.external = 0
        """Which channel of the stereo frames is ``external`` (the customer)."""
        self.close_reason = ""
        self.disconnecting = False
        """We sent ``disconnect``: from now on only the client's ``close`` is answered."""
        self.samples = 0
        """Per-leg samples of call time so far, received audio and inserted silence together."""
        self.discarded_s = 0.0

    @property
    def started(self) -> bool:
        return self.opened

    def message(self, kind: str, parameters: dict[str, object] | None = None) -> dict[str, object]:
        self.seq += 1
        return {"version": "2", "type": kind, "seq": self.seq, "clientseq": self.clientseq,
                "id": self.session_id, "parameters": parameters or {}}

    def receive(self, message: str | bytes) -> Reply:
        if self.disconnecting:
            return self._answer_close(message)
        if isinstance(message, str):
            return self._text(message)
        return Reply(events=self._audio(message))

    def call_opened(self, call_id: str) -> list[dict[str, object]]:
        return []  # `opened` is already in the open's reply: it is sent once the call is open

    def refuse(self, err: IngestError) -> Reply:
        """AudioHook clients understand ``disconnect``; then they send ``close``, and we answer ``closed``."""
        log.warning("AudioHook session %s: %s: %s", self.session_id, err.code, err.message)
        return self._disconnect(err.message, err.close_code)

    def flush(self) -> list[IngestEvent]:
        return []  # nothing is held back: each frame is passed on as it comes

    def _disconnect(self, info: str, code: int) -> Reply:
        self.disconnecting = True
        bye = self.message("disconnect", {"reason": "error", "info": info})
        return Reply([bye], close=Close(code, CLOSE_GRACE_S))

    def _text(self, text: str) -> Reply:
        msg = parse_json(text)
        kind, seq = msg.get("type"), msg.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq != self.clientseq + 1:
            raise IngestError("bad_seq", f"seq must count up from 1: expected {self.clientseq + 1}, "
                              f"got {seq!r}")
        if msg.get("id") != self.session_id:
            raise IngestError("bad_id", "message id must equal the Audiohook-Session-Id header", CLOSE_POLICY)
        self.clientseq = seq
        if msg.get("version") != VERSION:
            raise IngestError("unsupported_version", f"protocol version {str(msg.get('version'))[:16]!r} is not "
                              f"supported: use {VERSION!r}", CLOSE_POLICY)
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
            self.close_reason = close_reason(params.get("reason"))
            stop: list[IngestEvent] = [] if self.probe else [CallStop(self.close_reason)]
            return Reply([self.message("closed")], stop, Close(CLOSE_NORMAL))
        if kind == "paused":
            self.paused = True
            return Reply()
        if kind in ("resumed", "discarded"):
            if kind == "resumed":
                self.paused = False
            return Reply(events=self._discarded(params.get("discarded", "PT0S")))
        if kind == "update":
            lang = params.get("language")
            return Reply(events=[CallUpdate(language(lang))] if lang is not None else [])
        if kind == "error":
            # The client reports and then closes; nothing to answer, but an operator must be able to see it.
            log.warning("AudioHook session %s: the client reports error %s: %s", self.session_id,
                        str(params.get("code"))[:16], str(params.get("message"))[:300])
            return Reply()
        raise IngestError("unknown_type", f"unknown message type {kind!r}")

    def _answer_close(self, message: str | bytes) -> Reply:
        """After our ``disconnect`` the client ends the session: its ``close`` gets ``closed``, and then it
        hangs up (within what is left of the grace); anything else it still sends (audio in flight, a
        malformed message) is ignored."""
        try:
            msg = parse_json(message) if isinstance(message, str) else {}
        except IngestError:
            return Reply()
        if msg.get("type") != "close":
            return Reply()
        seq, params = msg.get("seq"), msg.get("parameters")
        if isinstance(seq, int) and not isinstance(seq, bool):
            self.clientseq = seq
        self.closed = True
        self.close_reason = close_reason(params.get("reason") if isinstance(params, dict) else None)
        return Reply([self.message("closed")], close=Close(CLOSE_NORMAL, CLOSE_GRACE_S))

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
            self.opened = True
            info = "no offered media format is stereo PCMU or L16 at 8000 Hz"
            log.warning("AudioHook session %s: media refused: %s (offered %.300s)", self.session_id, info,
                        json.dumps(params.get("media")))
            return self._disconnect(info, CLOSE_POLICY)
        self.external = self.media.channels.index("external")
        self.opened = True
        self.probe = conversation == PROBE_ID
        reply = self.message("opened", {"startPaused": False, "media": [self.media.to_dict()]})
        if self.probe:  # the connection probe gets a correct opened/closed and never becomes a call
            return Reply([reply])
        lang = language(params["language"]) if params.get("language") is not None else "auto"
        agent_id = self.default_agent_id
        team: str | None = None
        custom = params.get("customConfig")
        if isinstance(custom, dict) and isinstance(custom.get("agent_id"), str):
            agent_id = custom["agent_id"]
        if isinstance(custom, dict) and isinstance(custom.get("team"), str):
            team = clean_team(custom["team"], "team")
        start = CallStart(call_id=clean_id(conversation, "conversationId"),
                          agent_id=clean_id(agent_id, "agent_id"),
                          language=lang,
                          source="audiohook",
                          team=team)
        return Reply([reply], [start])

    def _discarded(self, duration: object) -> list[IngestEvent]:
        """The audio the client dropped is call time: a gap on the call's clock, not audio to analyse (the
        call itself bounds it against real time)."""
        seconds = parse_duration(duration)
        if seconds > MAX_SILENCE_S:
            raise IngestError("bad_duration", f"discarded {seconds} s is not plausible")
        if self.probe or seconds <= 0:
            return []
        self.discarded_s += seconds
        n = round(seconds * RATE)
        self.samples += n
        return [CallGap(n)]

    def _audio(self, data: bytes) -> list[IngestEvent]:
        if not self.opened or self.media is None:
            raise IngestError("not_opened", "audio before opened", CLOSE_POLICY)
        if self.closed or self.probe:
            return []
        if len(data) > self.max_frame_bytes:
            raise IngestError("frame_too_big", f"audio frames may be at most {self.max_frame_bytes} bytes",
                              CLOSE_TOO_BIG)
        width = 1 if self.media.format == "PCMU" else 2
        if len(data) % (width * 2):
            raise IngestError("bad_frame",
                              f"{len(data)} bytes is not whole stereo {self.media.format} samples")
        pcm = mulaw_decode(data) if width == 1 else pcm16_decode(data)
        rows = pcm.reshape(-1, 2)
        if self.external:  # offered internal first: the rows are (agent, customer)
            rows = rows[:, ::-1]
        self.samples += len(rows)
        # Audio sent while paused is still call time: analysing it is harmless, dropping it would skew.
        return [CallAudio(rows)] if len(rows) else []


def signature_base(components: Mapping[str, str], params_line: str) -> str:
    lines = [f'"{name}": {components[name]}' for name in SIGNED_COMPONENTS]
    return "\n".join([*lines, f'"@signature-params": {params_line}'])


def sign(client_secret_b64: str, base: str) -> str:
    key = base64.b64decode(client_secret_b64)
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|(\d+))')


def close_reason(value: object) -> str:
    """The client's reason for closing (``end``, ``error``, ...), kept with the call: short and plain."""
    text = str(value) if isinstance(value, str) and value else "end"
    return text[:MAX_REASON] if re.fullmatch(r"[A-Za-z0-9_-]+", text[:MAX_REASON]) else "other"


def check_request(headers: Mapping[str, str], target: str, authority: str, api_key: str, client_secret: str,
                  now: float, nonces: NonceCache | None = None) -> str | None:
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
    if nonces is not None and not nonces.first_use(params["nonce"]):
        return "signature nonce was used before (a replayed upgrade)"
    return None
