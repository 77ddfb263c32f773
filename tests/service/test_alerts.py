"""Alert rules over hand-written observation streams (the SPEC event dicts)."""

from __future__ import annotations

from typing import Any

from service.analysis.alerts import AlertEngine


def rules(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["rule"] for a in alerts]


def feed(engine: AlertEngine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ev in events:
        out += engine.observe(ev)
    return out


def interruption(t: float) -> dict[str, Any]:
    return {"type": "interruption", "by": "agent", "of": "customer", "start": t - 1, "overlap": 0.6, "t": t}


def test_interruption_alert_carries_its_cause_and_respects_cooldown_and_cap() -> None:
    e = AlertEngine("c1")
    out = feed(e, [interruption(10), interruption(12), interruption(30)])
    assert rules(out) == ["interruption", "interruption"]
    first = out[0]
    assert first["message"] == "You talked over the customer" and first["tip"] == "Let the customer finish"
    assert first["cause"] == [interruption(10)] and first["id"] == "c1-1" and first["t"] == 10
    out = feed(e, [interruption(50 + 20 * i) for i in range(10)])
    assert len(out) == 4  # capped at 6 a call
    assert not feed(e, [{"type": "interruption", "by": "customer", "of": "agent", "start": 1, "t": 500}])


def test_customer_raised_voice_becomes_upset_when_a_frustration_phrase_backs_it() -> None:
    e = AlertEngine("c", asr=False)
    raised = {"type": "raised_voice", "leg": "customer", "start": 20.0, "loudness_db": 8, "pitch_st": 3, "t": 22}
    out = feed(e, [raised])
    assert rules(out) == ["customer_raised_voice"]
    phrase = {"type": "phrase", "leg": "customer", "category": "frustration", "text": "this is ridiculous",
              "start": 23.0, "t": 25}
    out = feed(e, [phrase])
    assert rules(out) == ["customer_upset"] and out[0]["severity"] == "critical"
    assert out[0]["cause"] == [raised, phrase] and out[0]["message"] == "Customer upset"
    assert e.flagged


def test_frustration_alone_quotes_the_phrase() -> None:
    out = AlertEngine("c").observe({"type": "phrase", "leg": "customer", "category": "frustration",
                                    "text": "I am fed up", "start": 3.0, "t": 5.0})
    assert rules(out) == ["frustration"] and "I am fed up" in out[0]["message"]


def test_agent_voice_rising_speaks_of_volume_never_emotion() -> None:
    [a] = AlertEngine("c").observe({"type": "raised_voice", "leg": "agent", "start": 1, "loudness_db": 5,
                                    "pitch_st": 2, "t": 3})
    text = (a["message"] + a["tip"]).lower()
    assert "volume" in text
    assert not any(w in text for w in ("angry", "anger", "upset", "frustrat", "emotion", "stress"))


def test_dead_air_monologue_and_fast_speech() -> None:
    e = AlertEngine("c")
    out = feed(e, [{"type": "dead_air", "start": 10, "duration": 5.0, "t": 15},
                   {"type": "monologue", "leg": "agent", "start": 20, "duration": 60.0, "t": 80},
                   {"type": "monologue", "leg": "customer", "start": 90, "duration": 60.0, "t": 150},
                   {"type": "speaking_rate", "leg": "agent", "wpm": 210.0, "seconds": 24.0, "t": 160},
                   {"type": "speaking_rate", "leg": "agent", "wpm": 150.0, "t": 260}])
    assert rules(out) == ["dead_air", "monologue", "fast_speech"]
    assert out[0]["message"] == "Silence for 5 s" and out[0]["tip"] == "Tell the customer what you are checking"
    assert out[2]["message"] == "You are speaking fast (210 words a minute over 24 s of talk)"


def test_no_empathy_after_escalation_unless_the_agent_acknowledges() -> None:
    esc = {"type": "phrase", "leg": "customer", "category": "manager_request", "text": "get me a manager",
           "start": 10.0, "t": 12.0}
    tick = [{"type": "prosody", "leg": "agent", "t": float(t)} for t in range(13, 40)]
    out = feed(AlertEngine("c"), [esc, *tick])
    assert rules(out) == ["manager_request", "no_empathy"]
    assert out[1]["cause"] == [esc]
    sorry = {"type": "phrase", "leg": "agent", "category": "apology", "text": "I'm sorry", "start": 14.0, "t": 17.0}
    assert rules(feed(AlertEngine("c"), [esc, sorry, *tick])) == ["manager_request"]
    assert rules(feed(AlertEngine("c", asr=False), [esc, *tick])) == ["manager_request"]


def test_score_and_flag() -> None:
    e = AlertEngine("c")
    assert not e.flagged and e.score == 0
    feed(e, [interruption(10)])
    assert e.score > 0 and not e.flagged and e.flags == {"interruption"}


def test_an_interruption_shown_to_be_a_backchannel_is_retracted() -> None:
    e = AlertEngine("c")
    [alert] = e.observe(interruption(10))
    score = e.score
    bc = {"type": "backchannel", "by": "agent", "start": 9.0, "text": "mm-hm", "confirmed_by": "words",
          "retracts": interruption(10), "t": 12.0}
    [retraction] = e.observe(bc)
    assert retraction == {"type": "alert_retracted", "id": alert["id"], "rule": "interruption",
                          "reason": "backchannel", "cause": [bc], "t": 12.0}
    assert e.score == score - 8
    assert e.observe(bc) == []  # only once


def test_a_sustained_raised_voice_flags_the_call_whatever_the_score() -> None:
    # One customer episode scores 25, under the flag score; once it is sustained it flags the call on its own.
    e = AlertEngine("c", asr=False)
    feed(e, [{"type": "raised_voice", "leg": "customer", "start": 30.0, "loudness_db": 8, "pitch_st": 1, "t": 32}])
    assert not e.flagged
    feed(e, [{"type": "raised_voice_sustained", "leg": "customer", "start": 30.0, "duration": 6.0, "t": 37.0}])
    assert e.flagged and e.score < 50 and "customer_voice_raised" in e.call_fields()["flags"]
    agent = AlertEngine("c", asr=False)
    feed(agent, [{"type": "raised_voice_sustained", "leg": "agent", "start": 3.0, "duration": 3.0, "t": 7.0}])
    assert agent.flagged and agent.call_fields()["flags"] == ["agent_voice_raised"]


def test_the_interruption_alert_says_what_happened() -> None:
    cutoff = {**interruption(10), "kind": "cutoff"}
    [a] = AlertEngine("c").observe(cutoff)
    assert a["message"] == "You cut the customer off"
    [b] = AlertEngine("c").observe({**interruption(10), "kind": "competitive"})
    assert b["message"] == "You talked over the customer"


def test_a_less_certain_interruption_alerts_only_as_part_of_a_pattern() -> None:
    unsure = {**interruption(10), "kind": "cutoff", "confidence": 0.8}
    e = AlertEngine("c")
    assert feed(e, [unsure]) == []  # alone: not shown
    again = {**interruption(40), "kind": "cutoff", "confidence": 0.8}
    [alert] = feed(e, [again])  # the second within a minute: a pattern
    assert alert["cause"] == [unsure, again]
    late = AlertEngine("c")
    assert feed(late, [unsure, {**interruption(100), "kind": "cutoff", "confidence": 0.8}]) == []
    sure = AlertEngine("c")
    assert rules(feed(sure, [{**interruption(10), "kind": "cutoff", "confidence": 0.93}])) == ["interruption"]
