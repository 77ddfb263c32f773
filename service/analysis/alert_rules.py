"""The coaching rules' wording and limits, in one table so they can be tuned without reading the logic.

Agent-side rules describe behaviour (volume, pace, overlap), never the agent's emotion: inferring an
employee's emotions at work is banned in the EU (AI Act Art. 5(1)(f)). Customer tone is not covered by that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    severity: Severity
    message: str
    """``str.format`` template over what the engine passes the rule: ``what`` (interruption), ``seconds`` (dead air,
    monologue), ``wpm`` and ``over`` (fast speech), ``text`` (frustration)."""
    tip: str
    cooldown_s: float
    max_per_call: int
    score: int
    """Added to the call's escalation score when the rule fires."""


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("interruption", "warning", "{what}", "Let the customer finish",
         cooldown_s=15, max_per_call=6, score=8),
    Rule("customer_raised_voice", "warning", "Customer's voice is raised",
         "Acknowledge the frustration before solving", cooldown_s=30, max_per_call=5, score=25),
    Rule("customer_upset", "critical", "Customer upset",
         "Acknowledge the frustration before solving", cooldown_s=60, max_per_call=3, score=30),
    Rule("agent_voice_rising", "warning", "Your volume is rising",
         "Lower your volume and slow down", cooldown_s=30, max_per_call=4, score=12),
    Rule("dead_air", "info", "Silence for {seconds:.0f} s", "Tell the customer what you are checking",
         cooldown_s=20, max_per_call=6, score=3),
    Rule("monologue", "info", "You have been talking for {seconds:.0f} s",
         "Pause and check the customer is with you", cooldown_s=60, max_per_call=4, score=3),
    Rule("fast_speech", "info", "You are speaking fast ({wpm:.0f} words a minute{over})",
         "Slow down a little", cooldown_s=60, max_per_call=3, score=2),
    Rule("no_empathy", "warning", "No acknowledgement of the customer's frustration yet",
         "Say you understand, or apologise for the trouble", cooldown_s=60, max_per_call=3, score=10),
    Rule("frustration", "warning", "Customer sounds frustrated: \u201c{text}\u201d",
         "Acknowledge the frustration before solving", cooldown_s=30, max_per_call=5, score=15),
    Rule("manager_request", "critical", "Customer asked for a manager",
         "Acknowledge, offer to help first, follow the escalation policy", cooldown_s=60, max_per_call=2, score=20),
    Rule("churn_threat", "critical", "Customer mentions leaving",
         "Acknowledge, then look at retention options", cooldown_s=60, max_per_call=2, score=20),
)}

FAST_WPM = 185.0
"""Normal conversational pace is ~120-180 wpm (docs/detectors.md); a little above that before nagging."""
EMPATHY_WINDOW_S = 20.0
"""How long after a customer escalation the agent has to acknowledge it before ``no_empathy`` fires."""
UPSET_WINDOW_S = 30.0
"""A frustration phrase and a raised voice this close together are one upset customer."""
EMPATHY_CATEGORIES = frozenset({"empathy", "apology", "acknowledgement"})
FLAG_SCORE = 50
"""Escalation score at which a call is flagged for supervisor review (and its recording kept)."""
ALERT_CONFIDENCE = 0.9
"""An interruption at least this sure alerts the agent at once; a less sure one only when it follows another
of the agent's interruptions within ``PATTERN_WINDOW_S``: a pattern a coach would raise, not a single doubt."""
PATTERN_WINDOW_S = 60.0
FLAG_REASONS = {
    "customer": "customer_voice_raised",
    "agent": "agent_voice_raised",
}
"""A voice raised for a sustained stretch (``raised_voice_sustained``; how long is the leg's ``sustained_ms`` in
``audio.settings``) flags the call whatever its score, under this name in its ``flags``."""
