"""Property-based tests (Hypothesis) of every ingest parser and the token code: whatever arrives, a parser
answers with valid events or a documented IngestError, never another exception, and never slowly.

CI runs the ``ci`` profile (150 examples per property). ``CALLWATCH_HYPOTHESIS=thorough`` runs 10,000 per
property: ``python -m benchmarks.fuzz`` does so and prints a table (docs/security.md has the last figures).
"""

from __future__ import annotations

import base64
import json
import os
import string
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from service.core import auth
from service.core.logsafe import redact
from service.ingest.audiohook import (
    PROBE_ID,
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
from service.ingest.twilio import TwilioIngest, check_twilio_signature, twilio_signature
from tests.service.conftest import Server, native_call, wait_ended

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
    "unsupported_sample_rate", "unsupported_version", "unauthorized",
}
CLOSE_CODES = {CLOSE_UNSUPPORTED, CLOSE_INVALID_DATA, CLOSE_POLICY, CLOSE_TOO_BIG}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
# What a hostile sender puts where a short value belongs: long text (error messages must not echo it whole)
# and JSON nested deeper than the parser's stack.
long_text = st.text(min_size=200, max_size=3000)
hostile = json_values | long_text
deep_json = st.builds(lambda n, opening: opening * n + "1" + ("]" if opening == "[" else "}") * n,
                      st.integers(1, 200_000), st.sampled_from(["[", '{"a":']))


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
              "encoding": st.sampled_from(["pcm16", "mulaw", "alaw", 1, None]) | hostile,
              "sample_rate": st.sampled_from([8000, 16000, 44100, 48000, 7999, 0, -1, True, "8000", 1e9])
              | hostile,
              "channels": st.integers(-1, 10) | st.booleans() | st.none() | hostile,
              "channel_map": st.lists(st.sampled_from(["customer", "agent", "x", 1]), max_size=9),
              "language": json_values | st.sampled_from(["en", "auto", "ru-RU"])}).map(json.dumps)
native_msg = st.one_of(st.binary(max_size=2048), st.text(max_size=200), native_start,
                       st.just(json.dumps({"type": "stop"})), json_values.map(json.dumps),
                       st.fixed_dictionaries({"type": hostile}).map(json.dumps), deep_json)


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
    "track": st.sampled_from(["inbound", "outbound", "both", 0]) | hostile,
    "timestamp": st.integers(-100, 120_000).map(str) | json_values,
    "payload": st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=30),
}) | json_values}).map(json.dumps)
twilio_msg = st.one_of(twilio_start, twilio_media, st.text(max_size=100), st.binary(max_size=50),
                       json_values.map(json.dumps), deep_json,
                       st.sampled_from(["connected", "stop", "mark", "dtmf"]).map(lambda e: json.dumps({"event": e})))
GOOD_START = json.dumps({"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1",
                                                     "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}})


@given(st.lists(twilio_msg, max_size=15))
def test_twilio_parser_never_crashes(messages: list[str | bytes]) -> None:
    run(TwilioIngest(), messages)


@given(st.lists(twilio_media, min_size=1, max_size=30))
def test_twilio_media_after_a_good_start_never_crashes(messages: list[str]) -> None:
    run(TwilioIngest(), [GOOD_START, *messages])


SECRET = "secret"
twilio_tokens = st.one_of(hostile, st.sampled_from(auth.ROLES).map(
    lambda role: auth.issue(SECRET, role, "a")), st.just(auth.issue(SECRET, "ingest", ttl_s=-10)))


@given(st.lists(twilio_msg | twilio_tokens.map(lambda token: json.dumps(
    {"event": "start", "start": {"callSid": "CA1", "customParameters": {"token": token}}})), max_size=15))
def test_twilio_without_an_auth_token_checks_the_start_token_and_never_crashes(messages: list[str | bytes]
                                                                               ) -> None:
    run(TwilioIngest(token_secret=SECRET), messages)


@given(st.text(max_size=40), st.text(max_size=300), st.none() | st.text(max_size=60))
def test_twilio_signatures_check_or_are_refused(auth_token: str, url: str, signature: str | None) -> None:
    assert check_twilio_signature(auth_token, url, signature) in (True, False)
    assert check_twilio_signature(auth_token, url, twilio_signature(auth_token, url))


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
    "discarded": st.sampled_from(["PT0S", "PT1.5S", "PT59M", "PT2H", "P1D", "PT"]) | hostile,
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
        msg = {"version": draw(st.sampled_from(["2", "2", "2", "1", 2]) | hostile),
               "seq": seq if draw(st.integers(0, 20)) else draw(hostile),
               "type": draw(st.sampled_from(["open", "ping", "pause", "paused", "resumed", "discarded",
                                             "update", "error", "close", "bogus"]) | hostile),
               "id": draw(st.sampled_from([SID, SID, SID, "other"])), "parameters": draw(ah_params)}
        out.append(draw(st.sampled_from([json.dumps(msg), json.dumps(msg)[: draw(st.integers(0, 40))]])))
    if draw(st.integers(0, 9)) == 0:
        out.insert(draw(st.integers(0, len(out))), draw(deep_json))
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


@given(audiohook_messages())
def test_audiohook_after_our_disconnect_only_close_is_answered(messages: list[str | bytes]) -> None:
    """A refused media offer: we send ``disconnect``; then the client's ``close`` gets ``closed`` and anything
    else it sends is ignored, whatever it is."""
    s = AudioHookSession(SID, "org", max_frame_bytes=1024)
    refused = s.receive(json.dumps({"version": "2", "seq": 1, "type": "open", "id": SID, "parameters": {
        "conversationId": "c", "organizationId": "org", "media": [{"type": "audio", "format": "opus"}]}}))
    assert refused.close and refused.messages[-1]["type"] == "disconnect" and s.disconnecting
    last_seq = int(str(refused.messages[-1]["seq"]))
    for m in messages:
        if s.closed:
            break  # the client hangs up after `closed`
        reply = s.receive(m)
        assert not reply.events  # audio in flight and anything but `close` is ignored
        for out in reply.messages:
            assert out["type"] == "closed" and out["seq"] == last_seq + 1 and s.closed
            assert isinstance(s.close_reason, str) and 0 < len(s.close_reason) <= 32
            last_seq += 1


@given(st.sampled_from([SID, PROBE_ID]), audiohook_messages())
def test_audiohook_probe_never_becomes_a_call(conversation: str, messages: list[str | bytes]) -> None:
    s = AudioHookSession(SID, "org", max_frame_bytes=1024)
    opened = s.receive(json.dumps({"version": "2", "seq": 1, "type": "open", "id": SID, "parameters": {
        "conversationId": conversation, "organizationId": "org",
        "media": [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}]}}))
    assert opened.messages[0]["type"] == "opened" and len(opened.events) == (conversation != PROBE_ID)
    for m in messages:
        try:
            reply = s.receive(m)
        except IngestError as err:
            documented(err)
            return
        valid(reply.events)
        if conversation == PROBE_ID:
            assert not reply.events
        if reply.close or s.closed:
            return


@given(st.text(max_size=40) | hostile)
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


@given(st.dictionaries(st.sampled_from(["authorization", "Authorization", "x"]),
                       st.text(max_size=60) | st.text(max_size=60).map(lambda t: "Bearer " + t)),
       st.dictionaries(st.sampled_from(["token", "x"]), st.text(max_size=60)))
def test_a_token_is_found_or_not_in_any_headers_and_query(headers: dict[str, str], query: dict[str, str]) -> None:
    token = auth.token_from(headers, query)
    assert token is None or (isinstance(token, str) and token)
    if token is not None:
        try:
            auth.verify("secret", token)
        except auth.AuthError:
            return


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


@given(st.text(max_size=200) | json_values
       | st.text(st.characters(categories=["L", "Nd"]), min_size=1, max_size=130))
@example("中" * 43)  # 129 bytes: accepted until the properties found it, and then its recording was lost
def test_ids_are_clean_or_refused(value: Any) -> None:
    try:
        out = clean_id(value, "call_id")
    except IngestError as err:
        documented(err)
        return
    assert out == value and "/" not in out and not out.startswith(".") and 0 < len(out) <= 128
    # An id names files (recordings/<id>~N.part): it must fit a file name, which is 255 bytes, not characters.
    assert len(out.encode()) <= 128


# -- what these properties found, over a real socket -------------------------------------------------------------


async def test_an_id_too_long_for_a_file_name_is_refused_and_one_that_fits_is_recorded(server: Server) -> None:
    """128 letters beyond ASCII passed ``clean_id`` but not the file system: ``recordings/<id>.part`` failed
    with ENAMETOOLONG and the call's recording was lost under ``--recording all``. Ids are bounded in bytes."""
    async with connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest")) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": "中" * 43, "agent_id": "agent-1"}))
        reply = json.loads(await ws.recv())
    assert reply["type"] == "error" and reply["code"] == "bad_call_id", reply
    fits = "中" * 42  # 126 bytes
    audio = np.full(8000, 1000, dtype=np.int16)
    assert (await native_call(server, audio, audio, call_id=fits))[0]["call_id"] == fits
    call = await wait_ended(server, fits)
    assert call["recording"] is not None
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        assert (await client.get(f"/v1/calls/{fits}/recording")).status_code == 200


async def test_an_unhashable_encoding_is_refused_not_an_internal_error(server: Server) -> None:
    async with connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest")) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": "c", "agent_id": "a", "encoding": []}))
        reply = json.loads(await ws.recv())
    assert reply == {"type": "error", "code": "unsupported_encoding",
                     "message": "encoding [] is not supported: use pcm16 or mulaw"}


def test_an_error_quoting_a_long_value_is_cut_short() -> None:
    try:
        NativeIngest().receive(json.dumps({"type": "x" * 100_000}))
    except IngestError as err:
        assert err.code == "unknown_type" and len(err.message) == 300 and err.message.endswith("...")
    else:
        raise AssertionError("an unknown type was accepted")
