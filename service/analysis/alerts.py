"""Turns one call's observations into coaching alerts: pure, synchronous, one engine per call.

Observations are the monitor's typed events (``wire.Observation``); what comes out are ``Alert`` and
``AlertRetracted``, whose ``cause`` cites the observation(s) behind them. The rules read an observation's times
as its wire form shows them (seconds to the millisecond, on the call's clock when the call skipped audio), and
time only moves with the observations' ``t``, so a replayed call gets exactly the alerts it got live, and
``callwatch analyze`` the alerts the live service raises.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from audio.events import (
    DeadAir,
    Interruption,
    Monologue,
    RaisedVoice,
    RaisedVoiceEnded,
    RaisedVoiceSustained,
    seconds,
)
from service.analysis.alert_rules import (
    ALERT_CONFIDENCE,
    EMPATHY_CATEGORIES,
    EMPATHY_WINDOW_S,
    FAST_WPM,
    FLAG_REASONS,
    FLAG_SCORE,
    PATTERN_WINDOW_S,
    RULES,
    UPSET_WINDOW_S,
    Rule,
    Severity,
)
from service.analysis.text_events import BackchannelConfirmed, PhraseEvent, SpeakingRateEvent
from service.analysis.wire import Clock, Observation, WireEvent, wire_times

ESCALATING_PHRASES = frozenset({"frustration", "manager_request", "churn_threat"})
ASR_SLACK_S = 4.0
"""Transcripts arrive seconds after the words; wait this long past a deadline before saying none came."""


@dataclass(frozen=True, slots=True)
class Alert:
    """A coaching alert for the agent's screen (and the supervisor's board)."""

    id: str
    """``{call_id}-{n}``: the call's n-th alert."""
    rule: str
    severity: Severity
    message: str
    tip: str
    cause: tuple[WireEvent, ...]
    """The observations behind it, as they went out."""
    t: float
    type: Literal["alert"] = "alert"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "rule": self.rule, "severity": self.severity,
                "message": self.message, "tip": self.tip, "cause": [c.to_dict() for c in self.cause], "t": self.t}


@dataclass(frozen=True, slots=True)
class AlertRetracted:
    """An alert taken back, with the score it added: the words showed an "interruption" was a backchannel."""

    id: str
    rule: str
    reason: Literal["backchannel"]
    cause: tuple[WireEvent, ...]
    t: float
    type: Literal["alert_retracted"] = "alert_retracted"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "rule": self.rule, "reason": self.reason,
                "cause": [c.to_dict() for c in self.cause], "t": self.t}


AlertEvent = Alert | AlertRetracted


@dataclass(frozen=True, slots=True)
class _Seen:
    """An observation as the rules remember it: its times (wire seconds, call clock) and what an alert cites."""

    t: float
    start: float
    cite: WireEvent


def _same(s: float) -> float:
    return s


class AlertEngine:
    def __init__(self, call_id: str, *, asr: bool = True, rules: dict[str, Rule] | None = None) -> None:
        self.call_id = call_id
        self.asr = asr
        self.rules = RULES if rules is None else rules
        self.score = 0
        self.flags: set[str] = set()
        """Names of the rules that fired on this call."""
        self.critical = False
        self.fired: Counter[str] = Counter()
        self._last_fired: dict[str, float] = {}
        self._n = 0
        self._raised: _Seen | None = None
        """The customer's raised-voice episode that is open, or ended less than UPSET_WINDOW_S ago."""
        self._raised_end: float | None = None
        self._frustration: _Seen | None = None
        self._empathy_due: tuple[float, _Seen] | None = None
        self._last_empathy_start = float("-inf")
        self._agent_interruptions: list[_Seen] = []
        """The agent's interruptions of the last ``PATTERN_WINDOW_S``, for the less certain ones."""
        self._interruption_alerts: dict[float, Alert] = {}
        """Interruption alerts by the interruption's start, in case its words show it was a backchannel."""

    @property
    def flagged(self) -> bool:
        return self.score >= FLAG_SCORE or self.critical or any(r in self.flags for r in FLAG_REASONS.values())

    def call_fields(self) -> dict[str, Any]:
        """What the call object (``call_started``/``call_updated``/``call_ended``) says of the alerts so far."""
        return {"escalation_score": self.score, "flagged": self.flagged, "flags": sorted(self.flags)}

    def observe(self, ev: Observation, *, clock: Clock | None = None,
                cite: WireEvent | None = None) -> list[AlertEvent]:
        """The alerts (and retractions) ``ev`` brings, in order. ``clock``: the call's clock when the call skipped
        audio (the monitor's times leave the gaps out); ``cite``: what an alert shows for ``ev`` in its ``cause``
        (the envelope it went out in), ``ev`` itself by default."""
        at = clock or _same
        t_s, start_s = wire_times(ev)
        t = at(t_s)
        seen = _Seen(t, t if start_s is None else at(start_s), ev if cite is None else cite)
        out: list[AlertEvent] = [*self._check_empathy(t)]
        if isinstance(ev, RaisedVoiceSustained) and ev.leg in FLAG_REASONS:
            # A voice that stayed raised is worth a supervisor's listen, whatever the score says.
            self.flags.add(FLAG_REASONS[ev.leg])
        elif isinstance(ev, Interruption) and ev.by == "agent":
            out += self._agent_interrupted(ev, seen)
        elif isinstance(ev, BackchannelConfirmed):
            out += self._retract(ev, seen, at)
        elif isinstance(ev, RaisedVoice) and ev.leg == "customer":
            out += self._customer_raised(seen)
        elif isinstance(ev, RaisedVoiceEnded) and ev.leg == "customer":
            self._raised_end = t
        elif isinstance(ev, RaisedVoice) and ev.leg == "agent":
            out += self._fire("agent_voice_rising", t, [seen])
        elif isinstance(ev, DeadAir):
            out += self._fire("dead_air", t, [seen], seconds=seconds(ev.duration))
        elif isinstance(ev, Monologue) and ev.leg == "agent":
            out += self._fire("monologue", t, [seen], seconds=seconds(ev.duration))
        elif isinstance(ev, SpeakingRateEvent) and ev.leg == "agent" and round(ev.wpm) > FAST_WPM:
            over = round(ev.seconds, 1)  # as the wire shows them
            out += self._fire("fast_speech", t, [seen], wpm=float(round(ev.wpm)),
                              over=f" over {over:.0f} s of talk" if over else "")
        elif isinstance(ev, PhraseEvent):
            out += self._phrase(ev, seen)
        return out

    def _agent_interrupted(self, ev: Interruption, seen: _Seen) -> list[Alert]:
        what = "You cut the customer off" if ev.kind == "cutoff" else "You talked over the customer"
        earlier = [e for e in self._agent_interruptions if seen.t - e.t <= PATTERN_WINDOW_S]
        self._agent_interruptions = [*earlier, seen]
        sure = ev.confidence >= ALERT_CONFIDENCE
        if not sure and not earlier:
            return []
        fired = self._fire("interruption", seen.t, [seen] if sure else [*earlier[-1:], seen], what=what)
        if fired:
            self._interruption_alerts[seen.start] = fired[0]
        return fired

    def _retract(self, ev: BackchannelConfirmed, seen: _Seen, at: Clock) -> list[AlertRetracted]:
        """The transcript showed an "interruption" was only "mm-hm": withdraw its alert and its score."""
        if ev.retracts is None:
            return []
        start = at(seconds(ev.retracts.start))  # the interruption as the monitor emitted it: on its clock
        self._agent_interruptions = [e for e in self._agent_interruptions if e.start != start]
        alert = self._interruption_alerts.pop(start, None)
        if alert is None:
            return []
        self.score = max(0, self.score - self.rules["interruption"].score)
        return [AlertRetracted(alert.id, alert.rule, "backchannel", (seen.cite,), seen.t)]

    def _customer_raised(self, seen: _Seen) -> list[Alert]:
        self._raised, self._raised_end = seen, None
        self._escalated(seen)
        f = self._frustration
        if f is not None and abs(seen.start - f.start) <= UPSET_WINDOW_S:
            return self._fire("customer_upset", seen.t, [seen, f])
        return self._fire("customer_raised_voice", seen.t, [seen])

    def _phrase(self, ev: PhraseEvent, seen: _Seen) -> list[Alert]:
        category, leg, t = ev.category, ev.leg, seen.t
        if leg == "agent" and category in EMPATHY_CATEGORIES:
            self._last_empathy_start = max(self._last_empathy_start, seen.start)
            return []
        if leg != "customer" or category not in ESCALATING_PHRASES:
            return []
        self._escalated(seen)
        if category != "frustration":
            return self._fire(category, t, [seen])
        self._frustration = seen
        r = self._raised
        recent = r is not None and (self._raised_end is None or t - self._raised_end <= UPSET_WINDOW_S)
        if r is not None and recent:
            return self._fire("customer_upset", t, [r, seen])
        return self._fire("frustration", t, [seen], text=ev.text[:80])

    def _escalated(self, seen: _Seen) -> None:
        """Start the clock for the agent to acknowledge; needs transcripts, so only with ASR on."""
        if self.asr and self._empathy_due is None:
            self._empathy_due = (seen.start + EMPATHY_WINDOW_S, seen)

    def _check_empathy(self, t: float) -> list[Alert]:
        if self._empathy_due is None:
            return []
        deadline, cause = self._empathy_due
        if self._last_empathy_start >= cause.start - 2.0:
            self._empathy_due = None
            return []
        if t < deadline + ASR_SLACK_S:
            return []
        self._empathy_due = None
        return self._fire("no_empathy", t, [cause])

    def _fire(self, name: str, t: float, cause: list[_Seen], **fields: object) -> list[Alert]:
        rule = self.rules.get(name)
        if rule is None or self.fired[name] >= rule.max_per_call:
            return []
        last = self._last_fired.get(name)
        if last is not None and t - last < rule.cooldown_s:
            return []
        self._last_fired[name] = t
        self.fired[name] += 1
        self._n += 1
        self.score = min(100, self.score + rule.score)
        self.flags.add(name)
        self.critical = self.critical or rule.severity == "critical"
        try:
            message = rule.message.format(**fields)
        except (KeyError, ValueError, IndexError):
            message = rule.message
        return [Alert(f"{self.call_id}-{self._n}", name, rule.severity, message, rule.tip,
                      tuple(c.cite for c in cause), t)]
