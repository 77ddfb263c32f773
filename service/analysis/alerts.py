"""Turns one call's observations into coaching alerts: pure, synchronous, one engine per call.

Observations are the SPEC event dicts; alerts are SPEC ``alert`` dicts whose ``cause`` holds the
observation(s) behind them. Time only moves with the observations' ``t`` (call audio time), so a replayed
call gets exactly the alerts it got live.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

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
)

Event = dict[str, Any]
ESCALATING_PHRASES = frozenset({"frustration", "manager_request", "churn_threat"})
ASR_SLACK_S = 4.0
"""Transcripts arrive seconds after the words; wait this long past a deadline before saying none came."""


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
        self._raised: Event | None = None
        """The customer's raised-voice episode that is open, or ended less than UPSET_WINDOW_S ago."""
        self._raised_end: float | None = None
        self._frustration: Event | None = None
        self._empathy_due: tuple[float, Event] | None = None
        self._last_empathy_start = float("-inf")
        self._agent_interruptions: list[Event] = []
        """The agent's interruptions of the last ``PATTERN_WINDOW_S``, for the less certain ones."""
        self._interruption_alerts: dict[float, Event] = {}
        """Interruption alerts by the interruption's start, in case its words show it was a backchannel."""

    @property
    def flagged(self) -> bool:
        return self.score >= FLAG_SCORE or self.critical or any(r in self.flags for r in FLAG_REASONS.values())

    def call_fields(self) -> dict[str, Any]:
        """What the call object (``call_started``/``call_updated``/``call_ended``) says of the alerts so far."""
        return {"escalation_score": self.score, "flagged": self.flagged, "flags": sorted(self.flags)}

    def observe(self, ev: Event) -> list[Event]:
        t = float(ev.get("t", 0.0))
        out = self._check_empathy(t)
        kind = ev.get("type")
        if kind == "raised_voice_sustained" and ev.get("leg") in FLAG_REASONS:
            # A voice that stayed raised is worth a supervisor's listen, whatever the score says.
            self.flags.add(FLAG_REASONS[str(ev["leg"])])
        if kind == "interruption" and ev.get("by") == "agent":
            what = ("You cut the customer off" if ev.get("kind") == "cutoff"
                    else "You talked over the customer")
            earlier = [e for e in self._agent_interruptions if t - float(e.get("t", t)) <= PATTERN_WINDOW_S]
            self._agent_interruptions = [*earlier, ev]
            sure = float(ev.get("confidence", 1.0)) >= ALERT_CONFIDENCE
            fired = self._fire("interruption", t, [ev] if sure else [*earlier[-1:], ev], what=what) \
                if sure or earlier else []
            if fired:
                self._interruption_alerts[float(ev.get("start", t))] = fired[0]
            out += fired
        elif kind == "backchannel" and isinstance(ev.get("retracts"), dict):
            out += self._retract(ev, t)
        elif kind == "raised_voice" and ev.get("leg") == "customer":
            out += self._customer_raised(ev, t)
        elif kind == "raised_voice_end" and ev.get("leg") == "customer":
            self._raised_end = t
        elif kind == "raised_voice" and ev.get("leg") == "agent":
            out += self._fire("agent_voice_rising", t, [ev])
        elif kind == "dead_air":
            out += self._fire("dead_air", t, [ev], seconds=float(ev.get("duration", 0)))
        elif kind == "monologue" and ev.get("leg") == "agent":
            out += self._fire("monologue", t, [ev], seconds=float(ev.get("duration", 0)))
        elif kind == "speaking_rate" and ev.get("leg") == "agent" and float(ev.get("wpm", 0)) > FAST_WPM:
            seconds = float(ev.get("seconds", 0))
            out += self._fire("fast_speech", t, [ev], wpm=float(ev["wpm"]),
                              over=f" over {seconds:.0f} s of talk" if seconds else "")
        elif kind == "phrase":
            out += self._phrase(ev, t)
        return out

    def _retract(self, ev: Event, t: float) -> list[Event]:
        """The transcript showed an "interruption" was only "mm-hm": withdraw its alert and its score."""
        start = ev["retracts"].get("start")
        self._agent_interruptions = [e for e in self._agent_interruptions if e.get("start") != start]
        alert = self._interruption_alerts.pop(float(start), None) if isinstance(start, int | float) else None
        if alert is None:
            return []
        self.score = max(0, self.score - self.rules["interruption"].score)
        return [{"type": "alert_retracted", "id": alert["id"], "rule": alert["rule"], "reason": "backchannel",
                 "cause": [ev], "t": t}]

    def _customer_raised(self, ev: Event, t: float) -> list[Event]:
        self._raised, self._raised_end = ev, None
        self._escalated(ev, t)
        f = self._frustration
        if f is not None and abs(float(ev.get("start", t)) - float(f.get("start", t))) <= UPSET_WINDOW_S:
            return self._fire("customer_upset", t, [ev, f])
        return self._fire("customer_raised_voice", t, [ev])

    def _phrase(self, ev: Event, t: float) -> list[Event]:
        category, leg = ev.get("category"), ev.get("leg")
        if leg == "agent" and category in EMPATHY_CATEGORIES:
            self._last_empathy_start = max(self._last_empathy_start, float(ev.get("start", t)))
            return []
        if leg != "customer" or category not in ESCALATING_PHRASES:
            return []
        self._escalated(ev, t)
        if category != "frustration":
            return self._fire(str(category), t, [ev])
        self._frustration = ev
        r = self._raised
        recent = r is not None and (self._raised_end is None or t - self._raised_end <= UPSET_WINDOW_S)
        if r is not None and recent:
            return self._fire("customer_upset", t, [r, ev])
        return self._fire("frustration", t, [ev], text=str(ev.get("text", ""))[:80])

    def _escalated(self, ev: Event, t: float) -> None:
        """Start the clock for the agent to acknowledge; needs transcripts, so only with ASR on."""
        if self.asr and self._empathy_due is None:
            self._empathy_due = (float(ev.get("start", t)) + EMPATHY_WINDOW_S, ev)

    def _check_empathy(self, t: float) -> list[Event]:
        if self._empathy_due is None:
            return []
        deadline, cause = self._empathy_due
        if self._last_empathy_start >= float(cause.get("start", deadline)) - 2.0:
            self._empathy_due = None
            return []
        if t < deadline + ASR_SLACK_S:
            return []
        self._empathy_due = None
        return self._fire("no_empathy", t, [cause])

    def _fire(self, name: str, t: float, cause: list[Event], **fields: object) -> list[Event]:
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
            message = rule.message.format(**{**cause[0], **fields})
        except (KeyError, ValueError, IndexError):
            message = rule.message
        return [{"type": "alert", "id": f"{self.call_id}-{self._n}", "rule": name, "severity": rule.severity,
                 "message": message, "tip": rule.tip, "cause": cause, "t": t}]
