"""The protocol parsers on their own: bytes and JSON in, call events or IngestError out."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from audio.pcm import mulaw_encode
from service.ingest.audiohook import (
    PROBE_ID,
    AudioHookSession,
    check_request,
    format_duration,
    parse_duration,
    sign,
    signature_base,
)
from service.ingest.common import (
    CallAudio,
    CallGap,
    CallStart,
    CallStop,
    Close,
    IngestError,
    IngestEvent,
    Parser,
    Reply,
)
from service.ingest.native import NativeIngest
from service.ingest.twilio import TrackAligner, TwilioIngest, check_twilio_signature, twilio_signature

START = {"type": "start", "call_id": "c1", "agent_id": "a1", "sample_rate": 8000, "encoding": "pcm16",
         "channels": 2, "channel_map": ["customer", "agent"], "language": "en"}


def events(parser: Parser, message: str | bytes) -> list[IngestEvent]:
    return parser.receive(message).events


def stereo(customer: np.ndarray, agent: np.ndarray) -> bytes:
    return np.stack([customer, agent], axis=1).astype("<i2").tobytes()


def test_native_happy_path_deinterleaves_by_channel_map() -> None:
    ing = NativeIngest()
    [start] = events(ing, json.dumps({**START, "channel_map": ["agent", "customer"]}))
    assert isinstance(start, CallStart) and start.call_id == "c1" and start.language == "en"
    a, c = np.arange(160, dtype=np.int16), -np.arange(160, dtype=np.int16)
    [audio] = events(ing, stereo(a, c))
    assert isinstance(audio, CallAudio)
    assert np.array_equal(audio.customer, c) and np.array_equal(audio.agent, a)
    assert isinstance(events(ing, '{"type":"stop"}')[-1], CallStop)


def test_native_resamples_16k_to_8k() -> None:
    ing = NativeIngest()
    events(ing, json.dumps({**START, "sample_rate": 16000}))
    got = 0
    for _ in range(10):
        for ev in events(ing, stereo(np.zeros(320, np.int16), np.zeros(320, np.int16))):
            assert isinstance(ev, CallAudio)
            got += len(ev.customer)
    for ev in events(ing, '{"type":"stop"}'):
        if isinstance(ev, CallAudio):
            got += len(ev.customer)
    assert got == 1600


@pytest.mark.parametrize(("first", "code", "close"), [
    ("not json", "bad_json", 1007),
    ("[1]", "bad_json", 1007),
    (b"\x00\x00\x00\x00", "not_started", 1008),
    ('{"type":"stop"}', "not_started", 1008),
    ('{"type":"hello"}', "unknown_type", 1007),
    (json.dumps({**START, "encoding": "opus"}), "unsupported_encoding", 1003),
    (json.dumps({**START, "sample_rate": 3}), "unsupported_sample_rate", 1003),
    (json.dumps({**START, "sample_rate": 10**9}), "unsupported_sample_rate", 1003),
    (json.dumps({**START, "sample_rate": "8000"}), "unsupported_sample_rate", 1003),
    (json.dumps({**START, "channels": 1, "channel_map": ["customer"]}), "bad_channels", 1003),
    (json.dumps({**START, "channel_map": ["customer", "customer"]}), "bad_channel_map", 1007),
    (json.dumps({**START, "agent_id": ""}), "bad_agent_id", 1007),
    (json.dumps({**START, "call_id": "../../etc/passwd"}), "bad_call_id", 1007),
])
def test_native_bad_first_message(first: str | bytes, code: str, close: int) -> None:
    ing = NativeIngest()
    with pytest.raises(IngestError) as err:
        events(ing, first)
    assert (err.value.code, err.value.close_code) == (code, close)
    assert err.value.to_dict()["type"] == "error"


def test_native_bad_frames() -> None:
    ing = NativeIngest(max_frame_bytes=4096)
    events(ing, json.dumps(START))
    with pytest.raises(IngestError, match="whole") as err:
        events(ing, b"\x00" * 6)
    assert err.value.close_code == 1007
    with pytest.raises(IngestError) as err:
        events(ing, b"\x00" * 8192)
    assert err.value.close_code == 1009
    with pytest.raises(IngestError, match="once"):
        events(ing, json.dumps(START))


def twilio_media(track: str, ts: int, pcm: np.ndarray) -> str:
    return json.dumps({"event": "media", "streamSid": "MZ1", "media": {
        "track": track, "chunk": "1", "timestamp": str(ts),
        "payload": base64.b64encode(mulaw_encode(pcm)).decode()}})


TW_START = json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
    "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound", "outbound"],
    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    "customParameters": {"agent_id": "a7", "language": "ru"}}})


def test_twilio_aligns_tracks_by_timestamp_and_fills_lost_audio() -> None:
    ing = TwilioIngest()
    assert events(ing, '{"event":"connected","protocol":"Call","version":"1.0.0"}') == []
    [start] = events(ing, TW_START)
    assert isinstance(start, CallStart)
    assert (start.call_id, start.agent_id, start.language) == ("CA1", "a7", "ru")
    loud = np.full(160, 8000, dtype=np.int16)
    out = []
    out += events(ing, twilio_media("outbound", 0, loud))
    out += events(ing, twilio_media("inbound", 0, loud))
    out += events(ing, twilio_media("outbound", 20, loud))
    out += events(ing, twilio_media("inbound", 40, loud))  # inbound frame at 20 ms was lost
    out += events(ing, twilio_media("outbound", 40, loud))
    out += events(ing, '{"event":"stop","streamSid":"MZ1"}')
    audio = [e for e in out if isinstance(e, CallAudio)]
    cust = np.concatenate([a.customer for a in audio])
    agent = np.concatenate([a.agent for a in audio])
    assert len(cust) == len(agent) == 480
    assert np.all(cust[160:320] == 0) and np.all(cust[320:] != 0) and np.all(agent != 0)
    assert isinstance(out[-1], CallStop)
    assert ing.aligner.gap_samples == 160


def test_aligner_does_not_wait_forever_for_a_silent_track() -> None:
    al = TrackAligner(max_lead=800)
    for i in range(20):
        al.put(0, i * 160, np.ones(160, dtype=np.int16))
    got = al.take()
    assert got is not None and len(got.customer) == 20 * 160 - 800 and not got.agent.any()
    al.put(1, 0, np.ones(160, dtype=np.int16))  # too late: already released as silence
    assert al.late_samples == 160


@pytest.mark.parametrize(("msg", "code"), [
    ('{"event":"media","media":{}}', "not_started"),
    ('{"type":"start"}', "bad_message"),
    ("{", "bad_json"),
])
def test_twilio_bad_input_before_start(msg: str, code: str) -> None:
    with pytest.raises(IngestError) as err:
        events(TwilioIngest(), msg)
    assert err.value.code == code


@pytest.mark.parametrize(("media", "code"), [
    ({"track": "sideways", "timestamp": "0", "payload": ""}, "bad_track"),
    ({"track": "inbound", "timestamp": "x", "payload": ""}, "bad_media"),
    ({"track": "inbound", "timestamp": "0", "payload": "!!!"}, "bad_media"),
    ({"track": "inbound", "timestamp": str(10**9), "payload": ""}, "bad_timestamp"),
])
def test_twilio_bad_media(media: dict[str, str], code: str) -> None:
    ing = TwilioIngest()
    events(ing, TW_START)
    with pytest.raises(IngestError) as err:
        events(ing, json.dumps({"event": "media", "media": media}))
    assert err.value.code == code


def test_twilio_refuses_other_media_formats() -> None:
    bad = json.loads(TW_START)
    bad["start"]["mediaFormat"]["encoding"] = "audio/x-l16"
    with pytest.raises(IngestError) as err:
        events(TwilioIngest(), json.dumps(bad))
    assert err.value.close_code == 1003


def test_twilio_signature() -> None:
    sig = twilio_signature("tok", "wss://example.com/v1/ingest/twilio")
    assert check_twilio_signature("tok", "wss://example.com/v1/ingest/twilio", sig)
    assert not check_twilio_signature("tok", "wss://example.com/other", sig)
    assert not check_twilio_signature("tok", "wss://example.com/v1/ingest/twilio", None)


SID = "d89b9e94-0000-4000-8000-000000000001"
OFFER = [{"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000},
         {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}]


def ah(kind: str, seq: int, sid: str = SID, **params: object) -> str:
    return json.dumps({"version": "2", "type": kind, "seq": seq, "serverseq": 0, "id": sid,
                       "position": "PT0S", "parameters": params})


def test_audiohook_session_lifecycle() -> None:
    s = AudioHookSession(SID, "org1", default_agent_id="a1")
    r = s.receive(ah("open", 1, organizationId="org1", conversationId="conv-1", media=OFFER,
                          language="en-US", participant={"id": "p"}))
    [opened] = r.messages
    assert opened["type"] == "opened" and opened["clientseq"] == 1 and opened["seq"] == 1
    assert opened["parameters"] == {"startPaused": False, "media": [OFFER[1]]}
    assert isinstance(r.events[0], CallStart) and r.events[0].call_id == "conv-1"
    ext = np.frombuffer(mulaw_encode(np.full(800, 1000, np.int16)), np.uint8)
    internal = np.frombuffer(mulaw_encode(np.full(800, -1000, np.int16)), np.uint8)
    frame = np.stack([ext, internal], 1).tobytes()
    [audio] = events(s, frame)
    assert isinstance(audio, CallAudio) and audio.customer[0] > 0 > audio.agent[0]
    assert s.receive(ah("ping", 2)).messages[0]["type"] == "pong"
    assert s.receive(ah("paused", 3)).messages == [] and s.paused
    r = s.receive(ah("resumed", 4, start="PT0.1S", discarded="PT1.5S"))
    # The discarded stretch is a gap on the call's clock, never audio to analyse.
    assert not s.paused and r.events == [CallGap(12000)]
    assert s.samples == 800 + 12000
    r = s.receive(ah("close", 5, reason="end"))
    assert r.messages[0]["type"] == "closed" and r.messages[0]["seq"] == 3
    assert isinstance(r.events[0], CallStop)


def test_audiohook_probe_is_answered_and_never_becomes_a_call() -> None:
    s = AudioHookSession(SID)
    r = s.receive(ah("open", 1, organizationId="o", conversationId=PROBE_ID, media=OFFER))
    assert r.messages[0]["type"] == "opened" and r.events == []
    assert events(s, b"\xff" * 400) == []
    r = s.receive(ah("close", 2, reason="end"))
    assert r.messages[0]["type"] == "closed" and r.events == []


def test_audiohook_refuses_unusable_media_and_bad_sequencing() -> None:
    s = AudioHookSession(SID)
    r = s.receive(ah("open", 1, organizationId="o", conversationId="c", media=OFFER[:1]))
    assert r.close and r.messages[0]["type"] == "disconnect"
    s = AudioHookSession(SID)
    with pytest.raises(IngestError, match="seq"):
        s.receive(ah("open", 2, conversationId="c", media=OFFER))
    with pytest.raises(IngestError, match="before open"):
        AudioHookSession(SID).receive(ah("ping", 1))
    with pytest.raises(IngestError, match="Session-Id"):
        AudioHookSession(SID).receive(ah("open", 1, sid="other", conversationId="c", media=OFFER))
    with pytest.raises(IngestError):
        events(AudioHookSession(SID), b"\x00\x00")


def test_durations() -> None:
    assert parse_duration("PT3.80575S") == pytest.approx(3.80575)
    assert parse_duration("PT1M2S") == 62
    assert format_duration(1.5) == "PT1.5S"
    for bad in ("3S", "PT", "PTxS", 5):
        with pytest.raises(IngestError):
            parse_duration(bad)


def signed_headers(secret: str, api_key: str, created: int, nonce: str = "n" * 24) -> dict[str, str]:
    headers = {"audiohook-organization-id": "org", "audiohook-session-id": SID,
               "audiohook-correlation-id": "corr", "x-api-key": api_key}
    params = ('("@request-target" "@authority" "audiohook-organization-id" "audiohook-session-id" '
              f'"audiohook-correlation-id" "x-api-key");keyid="{api_key}";nonce="{nonce}";alg="hmac-sha256";'
              f"created={created};expires={created + 10}")
    base = signature_base({"@request-target": "/v1/ingest/audiohook", "@authority": "h:1", **headers}, params)
    return {**headers, "signature-input": f"sig1={params}", "signature": f"sig1=:{sign(secret, base)}:"}


def test_audiohook_request_signature() -> None:
    secret = base64.b64encode(b"client secret").decode()
    h = signed_headers(secret, "KEY", 1000)
    assert check_request(h, "/v1/ingest/audiohook", "h:1", "KEY", secret, now=1001) is None
    assert check_request(h, "/v1/ingest/audiohook", "h:1", "KEY", secret, now=1020) is not None  # stale
    assert check_request(h, "/v1/ingest/other", "h:1", "KEY", secret, now=1001) == "bad signature"
    assert check_request(h, "/v1/ingest/audiohook", "h:1", "OTHER", secret, now=1001) == "wrong X-API-KEY"
    short = signed_headers(secret, "KEY", 1000, nonce="short")
    assert check_request(short, "/v1/ingest/audiohook", "h:1", "KEY", secret, now=1001) is not None
    unsigned = {k: v for k, v in h.items() if not k.startswith("signature")}
    assert check_request(unsigned, "/v1/ingest/audiohook", "h:1", "KEY", "", now=1001) is None
    assert check_request(unsigned, "/v1/ingest/audiohook", "h:1", "KEY", secret, now=1001) is not None


def test_native_mulaw_frames() -> None:
    ing = NativeIngest()
    events(ing, json.dumps({**START, "encoding": "mulaw"}))
    c, a = np.full(160, 4000, np.int16), np.full(160, -4000, np.int16)
    data = np.stack([np.frombuffer(mulaw_encode(c), np.uint8), np.frombuffer(mulaw_encode(a), np.uint8)], 1)
    [audio] = events(ing, data.tobytes())
    assert isinstance(audio, CallAudio)
    assert np.allclose(audio.customer, 4000, rtol=0.05) and np.allclose(audio.agent, -4000, rtol=0.05)


def test_twilio_hands_on_aligned_audio_in_100_ms_steps_and_flushes_the_rest() -> None:
    ing = TwilioIngest()
    events(ing, TW_START)
    frame = np.full(160, 4000, dtype=np.int16)
    sizes = []
    for i in range(7):  # 140 ms of both tracks
        for track in ("outbound", "inbound"):
            sizes += [len(e.customer) for e in events(ing, twilio_media(track, 20 * i, frame))
                      if isinstance(e, CallAudio)]
    assert sizes == [800]  # nothing until 100 ms were aligned, then all of it at once
    [tail] = ing.flush()  # a dropped connection: the remaining 40 ms are not lost
    assert isinstance(tail, CallAudio) and len(tail.customer) == len(tail.agent) == 320
    assert ing.flush() == []


# -- the one contract: a message in, a Reply (messages, events, close) out -------------------------------------


@pytest.mark.parametrize("parser", [NativeIngest(), TwilioIngest()])
def test_native_and_twilio_refuse_with_the_error_and_its_close_code(parser: Parser) -> None:
    err = IngestError("too_fast", "audio arrives faster than real time", 1008)
    r = parser.refuse(err)
    assert r.messages == [{"type": "error", "code": "too_fast", "message": "audio arrives faster than real time"}]
    assert r.events == [] and r.close == Close(1008)


def test_a_stop_closes_normally_after_the_held_audio() -> None:
    ing = NativeIngest()
    ing.receive(json.dumps({**START, "sample_rate": 16000}))
    ing.receive(stereo(np.ones(320, np.int16), np.ones(320, np.int16)))
    r = ing.receive('{"type":"stop"}')
    assert [type(e) for e in r.events] == [CallAudio, CallStop] and r.close == Close(1000)
    assert ing.call_opened("c1~2") == [{"type": "started", "call_id": "c1~2"}]
    tw = TwilioIngest()
    tw.receive(TW_START)
    tw.receive(twilio_media("inbound", 0, np.ones(160, np.int16)))
    r = tw.receive('{"event":"stop"}')
    assert [type(e) for e in r.events] == [CallAudio, CallStop] and r.close == Close(1000)
    assert tw.call_opened("CA1") == []


def test_native_audio_is_the_wire_rows_when_they_are_customer_then_agent() -> None:
    ing = NativeIngest()
    ing.receive(json.dumps(START))
    c, a = np.arange(160, dtype=np.int16), -np.arange(160, dtype=np.int16)
    [audio] = events(ing, stereo(c, a))
    assert isinstance(audio, CallAudio) and audio.frames.shape == (160, 2)
    assert np.array_equal(audio.frames, np.stack([c, a], 1)) and audio.samples == 160


def test_twilio_checks_the_stream_token_only_when_asked() -> None:
    from service.core import auth

    good = auth.issue("s", "ingest")
    start = json.loads(TW_START)
    start["start"]["customParameters"]["token"] = good
    assert isinstance(events(TwilioIngest(token_secret="s"), json.dumps(start))[0], CallStart)
    start["start"]["customParameters"]["token"] = auth.issue("s", "supervisor")
    with pytest.raises(IngestError) as err:
        TwilioIngest(token_secret="s").receive(json.dumps(start))
    assert (err.value.code, err.value.close_code) == ("unauthorized", 1008)
    assert isinstance(events(TwilioIngest(), json.dumps(start))[0], CallStart)


def test_audiohook_refusal_is_the_disconnect_handshake() -> None:
    s = AudioHookSession(SID)
    s.receive(ah("open", 1, organizationId="o", conversationId="c", media=OFFER))
    r = s.refuse(IngestError("bad_frame", "3 bytes is not whole stereo PCMU samples"))
    [bye] = r.messages
    assert bye["type"] == "disconnect" and bye["seq"] == 2
    assert bye["parameters"] == {"reason": "error", "info": "3 bytes is not whole stereo PCMU samples"}
    assert r.close == Close(1007, 5.0)  # the client gets a grace to end the session itself
    # Until it does, what it still sends (audio in flight, anything malformed) is ignored ...
    assert s.receive(b"\xff" * 400) == s.receive("nonsense") == s.receive(ah("ping", 2)) == Reply()
    # ... and its close is answered with closed, after which it is to hang up (or is closed on, normally).
    r = s.receive(ah("close", 3, reason="error"))
    assert [m["type"] for m in r.messages] == ["closed"] and r.messages[0]["clientseq"] == 3
    assert r.events == [] and r.close == Close(1000, 5.0) and s.close_reason == "error"


def test_audiohook_close_from_the_client_closes_at_once() -> None:
    s = AudioHookSession(SID)
    s.receive(ah("open", 1, organizationId="o", conversationId="c", media=OFFER))
    r = s.receive(ah("close", 2, reason="end"))
    assert r.events == [CallStop("end")] and r.close == Close(1000)
    refused = AudioHookSession(SID).receive(ah("open", 1, organizationId="o", conversationId="c", media=OFFER[:1]))
    assert refused.close == Close(1008, 5.0)
