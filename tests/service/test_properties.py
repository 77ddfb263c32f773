"""Property-based tests (Hypothesis) of every ingest parser and the token code: whatever arrives, a parser
answers with valid events or a documented IngestError, never another exception, and never slowly.

CI runs the ``ci`` profile (a few hundred examples per property). ``CALLWATCH_HYPOTHESIS=thorough`` runs
10,000 per property, as done once by hand (see docs/security.md for the figures).
"""

from __future__ import annotations

import base64
import json
import os
import string
from datetime import timedelta
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core import auth
from service.core.logsafe import redact
from service.ingest.audiohook import (
    AudioHookSession,
    NonceCache,
    check_request,
    parse_duration,
)
from service.ingest.common import (
    CLOSE_INVALID_DATA,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_UNSUPPORTED,
    CallAudio,
    CallGap,
    CallStart,
    CallStop,
    CallUpdate,
    IngestError,
    IngestEvent,
    Reply,
    clean_id,
)
from service.ingest.native import NativeIngest
from service.ingest.twilio import TwilioIngest

settings.register_profile("ci", max_examples=150, deadline=timedelta(seconds=2),
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=10_000, deadline=timedelta(seconds=2),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("CALLWATCH_HYPOTHESIS", "ci"))

# The errors a parser may answer with: each is documented (README, docs/security.md) with its close code.
CODES = {
    "already_opened", "already_started", "bad_call_id", "bad_agent_id", "bad_conversationId", "bad_streamSid",
    "bad_callSid", "bad_channel_map", "bad_channels", "bad_duration", "bad_frame", "bad_id", "bad_json",
    "bad_language", "bad_media", "bad_message", "bad_open", "bad_organization", "bad_parameters", "bad_seq",
    "bad_start", "bad_timestamp", "bad_track", "binary_not_allowed", "frame_too_big", "not_opened",
    "not_started", "unknown_type", "unsupported_encoding", "unsupported_media_format",
    "unsupported_sample_rate", "unsupported_version",
}
CLOSE_CODES = {CLOSE_UNSUPPORTED, CLOSE_INVALID_DATA, CLOSE_POLICY, CLOSE_TOO_BIG}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)


def documented(err: IngestError) -> None:
    assert err.code in CODES, err.code
    assert err.close_code in CLOSE_CODES
    assert err.message and len(err.message) < 1000  # bounded: it is sent back and logged


def valid(events: list[IngestEvent]) -> None:
    for ev in events:
        assert isinstance(ev, CallStart | CallAudio | CallGap | CallUpdate | CallStop)
        if isinstance(ev, CallAudio):
            assert ev.customer.dtype == np.int16 and ev.agent.dtype == np.int16
            assert len(ev.customer) == len(ev.agent)
        if isinstance(ev, CallGap):
            assert ev.samples > 0
        if isinstance(ev, CallStart):
            assert clean_id(ev.call_id, "call_id") == ev.call_id and not ev.call_id.startswith(".")


def run(parser: Any, messages: list[str | bytes]) -> None:
    """Feed messages until the parser refuses one, as the socket loop does; then the stream's tail."""
    starts = 0
    for m in messages:
        try:
            events = parser.receive(m).events
        except IngestError as err:
            documented(err)
            return
        valid(events)
        starts += sum(isinstance(e, CallStart) for e in events)
        assert starts <= 1
    valid(parser.flush())


# -- native ---------------------------------------------------------------------------------------------------

native_start = st.fixed_dictionaries(
    {"type": st.just("start")},
    optional={"call_id": json_values | st.text(string.ascii_letters + "-_.:@~/", max_size=20),
              "agent_id": json_values | st.just("agent-1"),
              "encoding": st.sampled_from(["pcm16", "mulaw", "alaw", 1, None]),
              "sample_rate": st.sampled_from([8000, 16000, 44100, 48000, 7999, 0, -1, True, "8000", 1e9]),
              "channels": st.integers(-1, 10) | st.booleans() | st.none(),
              "channel_map": st.lists(st.sampled_from(["customer", "agent", "x", 1]), max_size=9),
              "language": json_values | st.sampled_from(["en", "auto", "ru-RU"])}).map(json.dumps)
native_msg = st.one_of(st.binary(max_size=2048), st.text(max_size=200), native_start,
                       st.just(json.dumps({"type": "stop"})), json_values.map(json.dumps))


@given(st.lists(native_msg, max_size=12))
def test_native_parser_never_crashes(messages: list[str | bytes]) -> None:
    run(NativeIngest(max_frame_bytes=4096), messages)


@given(st.sampled_from([8000, 16000, 22050, 44100, 48000]), st.integers(2, 8),
       st.lists(st.binary(max_size=4000), max_size=8))
def test_native_audio_after_a_good_start_is_audio_or_a_named_error(rate: int, channels: int,
                                                                   frames: list[bytes]) -> None:
    start = {"type": "start", "call_id": "c", "agent_id": "a", "sample_rate": rate, "channels": channels,
             "channel_map": ["customer", "agent", *["x"] * (channels - 2)]}
    run(NativeIngest(max_frame_bytes=4096), [json.dumps(start), *frames, json.dumps({"type": "stop"})])


# -- Twilio ---------------------------------------------------------------------------------------------------

twilio_start = st.fixed_dictionaries({"event": st.just("start")}, optional={
    "streamSid": json_values,
    "start": st.fixed_dictionaries({}, optional={
        "streamSid": st.text(max_size=20) | json_values, "callSid": st.text(max_size=20) | json_values,
        "mediaFormat": st.fixed_dictionaries({}, optional={
            "encoding": st.sampled_from(["audio/x-mulaw", "audio/l16", 5]),
            "sampleRate": st.sampled_from([8000, 16000, "8000"])}) | json_values,
        "customParameters": st.dictionaries(st.sampled_from(["agent_id", "language", "token", "x"]),
                                            json_values, max_size=4) | json_values}) | json_values,
}).map(json.dumps)
twilio_media = st.fixed_dictionaries({"event": st.just("media"), "media": st.fixed_dictionaries({}, optional={
    "track": st.sampled_from(["inbound", "outbound", "both", 0]),
    "timestamp": st.integers(-100, 120_000).map(str) | json_values,
    "payload": st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=30),
}) | json_values}).map(json.dumps)
twilio_msg = st.one_of(twilio_start, twilio_media, st.text(max_size=100), st.binary(max_size=50),
                       json_values.map(json.dumps),
                       st.sampled_from(["connected", "stop", "mark", "dtmf"]).map(lambda e: json.dumps({"event": e})))
GOOD_START = json.dumps({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1",
                                                     "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}})


@given(st.lists(twilio_msg, max_size=15))
def test_twilio_parser_never_crashes(messages: list[str | bytes]) -> None:
    run(TwilioIngest(), messages)


@given(st.lists(twilio_media, min_size=1, max_size=30))
def test_twilio_media_after_a_good_start_never_crashes(messages: list[str]) -> None:
    run(TwilioIngest(), [GOOD_START, *messages])


# -- AudioHook ------------------------------------------------------------------------------------------------

SID = "d89b9e94-0000-4000-8000-000000000001"
OFFERS = st.lists(st.fixed_dictionaries({}, optional={
    "type": st.just("audio"), "format": st.sampled_from(["PCMU", "L16", "opus"]),
    "channels": st.lists(st.sampled_from(["external", "internal", "x"]), max_size=3),
    "rate": st.sampled_from([8000, 16000, True, "8000"])}) | json_values, max_size=4)
ah_params = st.fixed_dictionaries({}, optional={
    "conversationId": st.text(string.ascii_letters + "-.~", max_size=12) | json_values,
    "organizationId": st.just("org") | json_values,
    "media": OFFERS, "language": st.sampled_from(["en-US", "x" * 50, ""]) | json_values,
    "discarded": st.sampled_from(["PT0S", "PT1.5S", "PT59M", "PT2H", "P1D", "PT"]) | json_values,
    "reason": st.sampled_from(["end", "error", "x" * 100]) | json_values,
    "customConfig": st.fixed_dictionaries({}, optional={"agent_id": json_values}) | json_values,
}) | json_values


@st.composite
def audiohook_messages(draw: st.DrawFn) -> list[str | bytes]:
    out: list[str | bytes] = []
    seq = 0
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(st.binary(max_size=1200)))
            continue
        seq = seq + 1 if draw(st.integers(0, 9)) else draw(st.integers(-2, 50))
        msg = {"version": draw(st.sampled_from(["2", "2", "2", "1", 2])), "seq": seq,
               "type": draw(st.sampled_from(["open", "ping", "pause", "paused", "resumed", "discarded",
                                             "update", "error", "close", "bogus"])),
               "id": draw(st.sampled_from([SID, SID, SID, "other"])), "parameters": draw(ah_params)}
        out.append(draw(st.sampled_from([json.dumps(msg), json.dumps(msg)[: draw(st.integers(0, 40))]])))
    return out


@given(audiohook_messages())
def test_audiohook_session_never_crashes(messages: list[str | bytes]) -> None:
    s = AudioHookSession(SID, "org", max_frame_bytes=1024)
    last_seq = 0
    for m in messages:
        try:
            reply: Reply = s.receive(m)
        except IngestError as err:
            documented(err)
            return
        valid(reply.events)
        for out in reply.messages:  # the server's own sequence counts up, and each names the session
            assert out["seq"] == last_seq + 1 and out["id"] == SID and out["version"] == "2"
            last_seq = out["seq"]
        if reply.close or s.closed:
            return


@given(st.text(max_size=40) | json_values)
def test_durations_parse_or_are_refused(text: Any) -> None:
    try:
        seconds = parse_duration(text)
    except IngestError as err:
        documented(err)
        return
    assert seconds >= 0


@given(st.dictionaries(st.sampled_from(["x-api-key", "audiohook-organization-id", "audiohook-session-id",
                                        "audiohook-correlation-id", "signature-input", "signature"]),
                       st.text(max_size=200)),
       st.text(max_size=50), st.integers(0, 2**33))
def test_upgrade_checks_never_crash(headers: dict[str, str], target: str, now: int) -> None:
    why = check_request({"x-api-key": "KEY", **headers}, target, "h:1", "KEY",
                        base64.b64encode(b"secret").decode(), now, NonceCache())
    assert why is None or isinstance(why, str)


# -- tokens -------------------------------------------------------------------------------------------------


@given(st.text(max_size=300))
def test_any_text_as_a_token_is_claims_or_an_auth_error(token: str) -> None:
    try:
        c = auth.verify("secret", token)
    except auth.AuthError as e:
        assert str(e) in ("malformed token", "bad token signature", "token expired", "agent token without agent id")
        return
    raise AssertionError(f"an unsigned text verified: {c}")


@given(st.sampled_from(auth.ROLES), st.text(min_size=1, max_size=40), st.integers(0, 10**6),
       st.data())
def test_issued_tokens_verify_and_any_change_is_refused(role: auth.Role, agent_id: str, ttl: int,
                                                        data: st.DataObject) -> None:
    token = auth.issue("secret", role, agent_id, ttl_s=ttl + 60)
    c = auth.verify("secret", token)
    assert (c.role, c.agent_id) == (role, agent_id)
    i = data.draw(st.integers(0, len(token) - 1))
    ch = data.draw(st.characters().filter(lambda x: x != token[i]))
    try:
        auth.verify("secret", token[:i] + ch + token[i + 1:])
    except auth.AuthError:
        pass
    else:
        raise AssertionError("a changed token verified")
    try:
        auth.verify("other secret", token)
    except auth.AuthError:
        return
    raise AssertionError("a token verified under another secret")


@given(st.text(string.ascii_letters + string.digits + "._-", min_size=6, max_size=80),
       st.sampled_from(["token", "tok%65n", "%74oken", "TOKEN", "t%6Fken"]), st.booleans())
def test_a_token_never_survives_in_a_logged_path(value: str, name: str, first: bool) -> None:
    query = f"{name}={value}" if first else f"a=1&{name}={value}&b=2"
    assert value not in redact(f'1.2.3.4 - "GET /v1/ws/agent?{query} HTTP/1.1" 101')


@given(st.text(max_size=200) | json_values)
def test_ids_are_clean_or_refused(value: Any) -> None:
    try:
        out = clean_id(value, "call_id")
    except IngestError as err:
        documented(err)
        return
    assert out == value and "/" not in out and not out.startswith(".") and 0 < len(out) <= 128
