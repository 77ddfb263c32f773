"""One call's analysis, shared by ``callwatch analyze`` and the live service: audio in, observations and alerts out.

Sans-I/O and synchronous. ``CallMonitor`` runs the acoustic analyzer (``audio.analyzer``) and the text rules on
both legs: audio in, typed observations out, plus the speech segments to transcribe. Transcripts come back
through ``add_transcript`` whenever the recogniser has them; nothing here waits for one, so the acoustic
observations never depend on transcription keeping up. ``AlertEngine`` turns those observations into coaching
alerts (``Alert``, ``AlertRetracted``) and the call's score and flags; their wording and limits are the table in
``alert_rules``.

The engine's time only moves with the observations' ``t``, and its rules read an observation's times as its wire
form shows them (seconds to the millisecond, on the call's clock when the call skipped audio), so a replayed call
gets exactly the alerts it got live, and ``callwatch analyze`` the alerts the live service raises.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from audio.analyzer import CallAnalyzer
from audio.events import (
    RATE,
    AcousticEvent,
    DeadAir,
    Interruption,
    Leg,
    Monologue,
    RaisedVoice,
    RaisedVoiceEnded,
    RaisedVoiceSustained,
    SpeechEnded,
    SpeechStarted,
    seconds,
)
from audio.settings import AnalyzerSettings
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
from service.analysis.redaction import UtteranceRedacted
from service.analysis.text_events import (
    BackchannelConfirmed,
    PhraseEvent,
    SpeakingRateEvent,
    TextEvent,
    UtteranceEvent,
)
from service.analysis.text_rules import RateTracker, TextRules, text_rules
from service.analysis.wire import Clock, Observation, WireEvent, wire_times

REPEAT_WINDOW_S = 15.0
"""A detail said back repeats words the other leg said at most this long before."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A finished stretch of one leg's speech, with a little audio either side, ready for a recogniser."""

    leg: Leg
    start_s: float
    end_s: float
    audio: NDArray[np.int16]
    """8 kHz mono, from ``start_s`` to ``end_s``."""
    final: bool = True
    """False when a long turn was cut for transcription and goes on."""


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    analyzer: AnalyzerSettings = field(default_factory=AnalyzerSettings)
    segment_pad_s: float = 0.2
    """Audio kept either side of a segment: VAD onsets and offsets clip soft word edges."""
    max_segment_s: float = 20.0
    """A turn longer than this is sent for transcription in pieces, so its text does not lag."""
    rate_cooldown_s: float = 60.0
    """At most one speaking_rate event per leg in this long."""
    keep_audio_s: float = 40.0
    """Audio retained per leg for cutting segments: at least ``max_segment_s`` plus padding and hangover."""


class CallMonitor:
    def __init__(self, settings: MonitorSettings | None = None, *, text: TextRules | None = None,
                 language: str | None = None, segments: bool = True) -> None:
        """``segments=False``: no speech audio is kept or cut for a recogniser (a service without one)."""
        self.settings = settings or MonitorSettings()
        self.segments = segments
        self.analyzer = CallAnalyzer(self.settings.analyzer)
        self.text = text if text is not None else text_rules()
        self.language = language
        self.redactor = self.text.redactor() if self.text.redactor is not None else None
        self.silenced: list[tuple[float, float]] = []
        """Call-time spans whose audio held what redaction hid: recordings silence them on both legs."""
        # A ring of recent audio: call sample n lives at column n % size.
        self._ring = np.zeros((2, int(self.settings.keep_audio_s * RATE) if segments else 0), dtype=np.int16)
        self._written = 0  # call samples written so far
        self._open: dict[Leg, int] = {}  # leg -> sample where the not-yet-transcribed part starts
        self._segments: list[Segment] = []
        self._interruptions: list[Interruption] = []
        self._heard: list[tuple[Interruption, str]] = []
        """Interruptions whose words came and were not a backchannel: the other leg's words, if they come later,
        may show they were said back."""
        self._said: dict[str, list[tuple[float, str]]] = {"customer": [], "agent": []}
        """Each leg's recent utterances (end, text), for the repeat-back check."""
        self._rates: dict[str, RateTracker] = {}
        self._last_rate_event: dict[str, float] = {}

    @property
    def time_s(self) -> float:
        """Call audio consumed so far: the honest ``t`` of anything known now."""
        return self.analyzer.samples / RATE

    def push(self, customer: NDArray[np.int16], agent: NDArray[np.int16]) -> list[AcousticEvent]:
        events = self.analyzer.push(customer, agent)
        if not self.segments:
            return events
        self._retain(customer, agent)
        for ev in events:
            if isinstance(ev, SpeechStarted):
                self._open[ev.leg] = ev.start
            elif isinstance(ev, SpeechEnded):
                self._cut(ev.leg, self._open.pop(ev.leg, ev.start), ev.end, final=True)
            elif isinstance(ev, Interruption):
                self._interruptions.append(ev)
        self._cut_long_turns()
        return events

    def finish(self) -> list[AcousticEvent]:
        events = self.analyzer.finish()
        for ev in events if self.segments else ():
            if isinstance(ev, SpeechEnded):
                self._cut(ev.leg, self._open.pop(ev.leg, ev.start), ev.end, final=True)
        return events

    def take_segments(self) -> list[Segment]:
        out, self._segments = self._segments, []
        return out

    def add_transcript(self, leg: str, start_s: float, end_s: float, text: str,
                       words: Sequence[tuple[str, float, float]] = (), language: str | None = None) -> list[TextEvent]:
        """Turn a recogniser's output for one segment into utterance, phrase, rate and backchannel events."""
        now = max(self.time_s, end_s)
        lang = language or self.language or ""
        out: list[TextEvent] = []
        clean, words, revisions = self._redact(leg, start_s, end_s, text, words, lang, now)
        if clean:
            out.append(UtteranceEvent(leg, start_s, end_s, clean, lang, now, tuple(words)))
        out.extend(revisions)
        for cue in self.text.find_cues(clean, leg, language or self.language):
            out.append(PhraseEvent(leg, cue.category, cue.text, start_s, now))
        out.extend(self._confirm_backchannel(leg, start_s, end_s, clean, language, now))
        out.extend(self._speaking_rate(leg, words, now))
        return out

    def _redact(self, leg: str, start_s: float, end_s: float, text: str, words: Sequence[tuple[str, float, float]],
                lang: str, now: float) -> tuple[str, Sequence[tuple[str, float, float]], list[TextEvent]]:
        if self.redactor is None:
            clean = self.text.redact(text).strip()
            return clean, (words if clean == text.strip() else ()), []  # the words would leak what it hid
        update = self.redactor.add(leg, start_s, end_s, text, tuple(words))
        self.silenced.extend(update.utterance.silence)
        revisions: list[TextEvent] = []
        for r in update.revised:
            self.silenced.extend(r.silence)
            revisions.append(UtteranceRedacted(r.leg, r.start, r.end, r.text, lang, now, r.words, r.tags, r.silence))
        return update.utterance.text, update.utterance.words, revisions

    def _confirm_backchannel(self, leg: str, start_s: float, end_s: float, text: str, language: str | None,
                             now: float) -> list[TextEvent]:
        """Withdraw interruptions whose words show a listener response: a backchannel ("uh-huh", "okay"), or
        the other leg's words said back. The interrupter's words and the other's may come in either order."""
        out: list[TextEvent] = []
        said = self._said[leg]
        said.append((end_s, text))
        said[:] = [(e, t) for e, t in said if e > now - REPEAT_WINDOW_S - 30.0]
        for ev in list(self._interruptions):
            s = ev.start / RATE
            if ev.by != leg or not start_s - 0.3 <= s <= end_s:
                continue
            self._interruptions.remove(ev)
            if self.text.is_backchannel(text, language) or self.text.repeats(text, self._heard_before(ev)):
                out.append(BackchannelConfirmed(leg, s, text, now, retracts=ev))
            else:
                self._heard.append((ev, text))
        for ev, words in list(self._heard):
            if ev.of == leg and self.text.repeats(words, self._heard_before(ev)):
                self._heard.remove((ev, words))
                out.append(BackchannelConfirmed(ev.by, ev.start / RATE, words, now, retracts=ev))
        # Interruptions older than a minute will never be confirmed: forget them.
        self._interruptions = [ev for ev in self._interruptions if ev.start / RATE > now - 60.0]
        self._heard = [(ev, w) for ev, w in self._heard if ev.start / RATE > now - 60.0]
        return out

    def _heard_before(self, ev: Interruption) -> str:
        """What the interrupted leg said shortly before and during the interruption."""
        s = ev.start / RATE
        return " ".join(t for e, t in self._said[ev.of] if s - REPEAT_WINDOW_S <= e <= s + 30.0)

    def _speaking_rate(self, leg: str, words: Sequence[tuple[str, float, float]], now: float) -> list[TextEvent]:
        tracker = self._rates.get(leg)
        if tracker is None:
            tracker = self._rates[leg] = self.text.rate_tracker()
        reading = tracker.add(words) if words else None
        if reading is None or now - self._last_rate_event.get(leg, -1e9) < self.settings.rate_cooldown_s:
            return []
        self._last_rate_event[leg] = now
        return [SpeakingRateEvent(leg, reading[0], now, reading[1])]

    def _retain(self, customer: NDArray[np.int16], agent: NDArray[np.int16]) -> None:
        size = self._ring.shape[1]
        n = len(customer)
        if n >= size:
            customer, agent = customer[-size:], agent[-size:]
            self._written += n - size
            n = size
        pos = self._written % size
        first = min(n, size - pos)
        self._ring[0, pos: pos + first], self._ring[1, pos: pos + first] = customer[:first], agent[:first]
        self._ring[0, : n - first], self._ring[1, : n - first] = customer[first:], agent[first:]
        self._written += n

    def _cut(self, leg: Leg, start: int, end: int, *, final: bool) -> None:
        pad = int(self.settings.segment_pad_s * RATE)
        size = self._ring.shape[1]
        a = max(start - pad, self._written - size, 0)
        b = min(end + pad, self._written)
        if b <= a:
            return
        row = 0 if leg == "customer" else 1
        idx = np.arange(a, b) % size
        self._segments.append(Segment(leg, a / RATE, b / RATE, self._ring[row, idx], final))

    def _cut_long_turns(self) -> None:
        limit = int(self.settings.max_segment_s * RATE)
        now = self.analyzer.samples
        for leg, start in list(self._open.items()):
            if now - start >= limit:
                self._cut(leg, start, now, final=False)
                self._open[leg] = now


# The alert engine: observations in, coaching alerts out.

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
