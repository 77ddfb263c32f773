"""Alert rules over hand-written observation streams: the monitor's typed events in, typed alerts out."""

from __future__ import annotations

from collections.abc import Sequence

from audio.events import (
    RATE,
    DeadAir,
    Interruption,
    Leg,
    Monologue,
    ProsodySample,
    RaisedVoice,
    RaisedVoiceSustained,
    other,
)
from service.analysis.monitor import Alert, AlertEngine, AlertEvent, AlertRetracted
from service.analysis.text_events import BackchannelConfirmed, PhraseEvent, SpeakingRateEvent
from service.analysis.wire import CallEvent, Observation, call_clock


def n(seconds: float) -> int:
    """Seconds as the sample counts acoustic events hold."""
    return round(seconds * RATE)


def rules(alerts: Sequence[AlertEvent]) -> list[str]:
    return [a.rule for a in alerts]


def feed(engine: AlertEngine, events: list[Observation]) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for ev in events:
        out += engine.observe(ev)
    return out


def only_alerts(out: list[AlertEvent]) -> list[Alert]:
    assert all(isinstance(a, Alert) for a in out), out
    return [a for a in out if isinstance(a, Alert)]


def interruption(t: float, *, kind: str = "competitive", confidence: float = 1.0, by: Leg = "agent") -> Interruption:
    return Interruption(by, other(by), n(t - 1), n(0.6), n(t), "cutoff" if kind == "cutoff" else "competitive",
                        confidence)


def raised(leg: Leg, start: float, t: float) -> RaisedVoice:
    return RaisedVoice(leg, n(start), 8.0, 3.0, n(t))


def phrase(leg: str, category: str, text: str, start: float, t: float) -> PhraseEvent:
    return PhraseEvent(leg, category, text, start, t)


def tick(t: float) -> ProsodySample:
    return ProsodySample("agent", n(t - 1), n(t), -30.0, 120.0, None, None, n(t))


def test_interruption_alert_carries_its_cause_and_respects_cooldown_and_cap() -> None:
    e = AlertEngine("c1")
    out = only_alerts(feed(e, [interruption(10), interruption(12), interruption(30)]))
    assert rules(out) == ["interruption", "interruption"]
    first = out[0]
    assert first.message == "You talked over the customer" and first.tip == "Let the customer finish"
    assert first.cause == (interruption(10),) and first.id == "c1-1" and first.t == 10.0
    assert e.score == 16
    out = only_alerts(feed(e, [interruption(50 + 20 * i) for i in range(10)]))
    assert len(out) == 4  # capped at 6 a call
    assert not feed(e, [interruption(500, by="customer")])


def test_an_alert_goes_out_as_the_spec_says_field_for_field() -> None:
    ev = interruption(10)
    [alert] = AlertEngine("c1").observe(ev)
    wire = alert.to_dict()
    assert wire == {"type": "alert", "id": "c1-1", "rule": "interruption", "severity": "warning",
                    "message": "You talked over the customer", "tip": "Let the customer finish",
                    "cause": [ev.to_dict()], "t": 10.0}
    assert list(wire) == ["type", "id", "rule", "severity", "message", "tip", "cause", "t"]
    assert isinstance(wire["t"], float)


def test_an_alert_cites_the_envelope_its_cause_went_out_in() -> None:
    ev = interruption(10)
    sent = CallEvent("c1", ev)
    [alert] = AlertEngine("c1").observe(ev, cite=sent)
    out = CallEvent("c1", alert).wire
    assert out["cause"] == [sent.wire] and out["cause"][0]["call_id"] == "c1" and out["call_id"] == "c1"
    assert out["cause"][0] is sent.wire  # made once, shared


def test_customer_raised_voice_becomes_upset_when_a_frustration_phrase_backs_it() -> None:
    e = AlertEngine("c", asr=False)
    voice = raised("customer", 20.0, 22.0)
    out = only_alerts(feed(e, [voice]))
    assert rules(out) == ["customer_raised_voice"] and e.score == 25
    said = phrase("customer", "frustration", "this is ridiculous", 23.0, 25.0)
    out = only_alerts(feed(e, [said]))
    assert rules(out) == ["customer_upset"] and out[0].severity == "critical"
    assert out[0].cause == (voice, said) and out[0].message == "Customer upset"
    assert e.score == 55 and e.flagged


def test_frustration_alone_quotes_the_phrase() -> None:
    out = only_alerts(AlertEngine("c").observe(phrase("customer", "frustration", "I am fed up", 3.0, 5.0)))
    assert rules(out) == ["frustration"] and out[0].message == "Customer sounds frustrated: \u201cI am fed up\u201d"


def test_agent_voice_rising_speaks_of_volume_never_emotion() -> None:
    [a] = only_alerts(AlertEngine("c").observe(raised("agent", 1.0, 3.0)))
    text = (a.message + a.tip).lower()
    assert "volume" in text
    assert not any(w in text for w in ("angry", "anger", "upset", "frustrat", "emotion", "stress"))


def test_dead_air_monologue_and_fast_speech() -> None:
    e = AlertEngine("c")
    out = only_alerts(feed(e, [DeadAir(n(10), n(5.0), n(15)),
                               Monologue("agent", n(20), n(60.0), n(80)),
                               Monologue("customer", n(90), n(60.0), n(150)),
                               SpeakingRateEvent("agent", 210.0, 160.0, 24.0),
                               SpeakingRateEvent("agent", 150.0, 260.0)]))
    assert rules(out) == ["dead_air", "monologue", "fast_speech"]
    assert out[0].message == "Silence for 5 s" and out[0].tip == "Tell the customer what you are checking"
    assert out[1].message == "You have been talking for 60 s"
    assert out[2].message == "You are speaking fast (210 words a minute over 24 s of talk)"


def test_fast_speech_is_judged_on_the_rate_the_wire_shows() -> None:
    # 185.4 goes out as 185, which is not over the 185 limit: the alert follows what a reader sees.
    assert AlertEngine("c").observe(SpeakingRateEvent("agent", 185.4, 10.0, 20.0)) == []
    [a] = only_alerts(AlertEngine("c").observe(SpeakingRateEvent("agent", 185.6, 10.0, 0.0)))
    assert a.message == "You are speaking fast (186 words a minute)"


def test_no_empathy_after_escalation_unless_the_agent_acknowledges() -> None:
    esc = phrase("customer", "manager_request", "get me a manager", 10.0, 12.0)
    ticks = [tick(float(t)) for t in range(13, 40)]
    out = only_alerts(feed(AlertEngine("c"), [esc, *ticks]))
    assert rules(out) == ["manager_request", "no_empathy"]
    assert out[1].cause == (esc,) and out[1].t == 34.0  # 10 + 20 s to acknowledge + 4 s for the transcript
    sorry = phrase("agent", "apology", "I'm sorry", 14.0, 17.0)
    assert rules(feed(AlertEngine("c"), [esc, sorry, *ticks])) == ["manager_request"]
    assert rules(feed(AlertEngine("c", asr=False), [esc, *ticks])) == ["manager_request"]


def test_score_and_flag() -> None:
    e = AlertEngine("c")
    assert not e.flagged and e.score == 0
    feed(e, [interruption(10)])
    assert e.score == 8 and not e.flagged and e.flags == {"interruption"}
    assert e.call_fields() == {"escalation_score": 8, "flagged": False, "flags": ["interruption"]}


def test_an_interruption_shown_to_be_a_backchannel_is_retracted() -> None:
    e = AlertEngine("c")
    ev = interruption(10)
    [alert] = only_alerts(e.observe(ev))
    score = e.score
    bc = BackchannelConfirmed("agent", 9.0, "mm-hm", 12.0, retracts=ev)
    [retraction] = e.observe(bc)
    assert retraction == AlertRetracted(alert.id, "interruption", "backchannel", (bc,), 12.0)
    assert retraction.to_dict() == {"type": "alert_retracted", "id": alert.id, "rule": "interruption",
                                    "reason": "backchannel", "cause": [bc.to_dict()], "t": 12.0}
    assert list(retraction.to_dict()) == ["type", "id", "rule", "reason", "cause", "t"]
    assert e.score == score - 8
    assert e.observe(bc) == []  # only once


def test_times_are_read_on_the_calls_clock() -> None:
    # 60 s of the call were skipped at monitor time 20 s: the monitor's 25 s is the call's 85 s.
    clock = call_clock((20.0,), (60.0,))
    e = AlertEngine("c", asr=False)
    [first] = only_alerts(e.observe(raised("customer", 5.0, 6.0), clock=clock))
    assert first.t == 6.0
    # 19 s later by the monitor, 79 s later on the call: past the 30 s cooldown.
    [second] = only_alerts(e.observe(raised("customer", 24.0, 25.0), clock=clock))
    assert second.t == 85.0 and second.rule == "customer_raised_voice"
    # Without the clock the same two are one alert: the second is within the cooldown.
    plain = AlertEngine("c", asr=False)
    assert len(feed(plain, [raised("customer", 5.0, 6.0), raised("customer", 24.0, 25.0)])) == 1


def test_a_backchannel_after_a_skipped_gap_still_retracts_its_interruption() -> None:
    # The backchannel names the interruption as the monitor emitted it (monitor time); the alert is keyed on
    # the call's clock. Both are read on the call's clock, so the retraction finds its alert.
    clock = call_clock((5.0,), (30.0,))
    e = AlertEngine("c")
    ev = interruption(10)
    [alert] = only_alerts(e.observe(ev, clock=clock))
    assert alert.t == 40.0
    [retraction] = e.observe(BackchannelConfirmed("agent", 9.0, "mm-hm", 12.0, retracts=ev), clock=clock)
    assert isinstance(retraction, AlertRetracted) and retraction.id == alert.id and retraction.t == 42.0
    assert e.score == 0


def test_a_sustained_raised_voice_flags_the_call_whatever_the_score() -> None:
    # One customer episode scores 25, under the flag score; once it is sustained it flags the call on its own.
    e = AlertEngine("c", asr=False)
    feed(e, [raised("customer", 30.0, 32.0)])
    assert not e.flagged
    assert feed(e, [RaisedVoiceSustained("customer", n(30.0), n(6.0), n(37.0))]) == []
    assert e.flagged and e.score == 25 and "customer_voice_raised" in e.call_fields()["flags"]
    agent = AlertEngine("c", asr=False)
    feed(agent, [RaisedVoiceSustained("agent", n(3.0), n(3.0), n(7.0))])
    assert agent.flagged and agent.call_fields()["flags"] == ["agent_voice_raised"]


def test_the_interruption_alert_says_what_happened() -> None:
    [a] = only_alerts(AlertEngine("c").observe(interruption(10, kind="cutoff")))
    assert a.message == "You cut the customer off"
    [b] = only_alerts(AlertEngine("c").observe(interruption(10, kind="competitive")))
    assert b.message == "You talked over the customer"


def test_a_less_certain_interruption_alerts_only_as_part_of_a_pattern() -> None:
    unsure = interruption(10, kind="cutoff", confidence=0.8)
    e = AlertEngine("c")
    assert feed(e, [unsure]) == []  # alone: not shown
    again = interruption(40, kind="cutoff", confidence=0.8)
    [alert] = only_alerts(feed(e, [again]))  # the second within a minute: a pattern
    assert alert.cause == (unsure, again)
    late = AlertEngine("c")
    assert feed(late, [unsure, interruption(100, kind="cutoff", confidence=0.8)]) == []
    sure = AlertEngine("c")
    assert rules(feed(sure, [interruption(10, kind="cutoff", confidence=0.93)])) == ["interruption"]
