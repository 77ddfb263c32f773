"""The per-call core shared by ``callwatch analyze`` and the live service.

Sans-I/O: audio of both legs in, events out, plus the speech segments to transcribe. Transcripts come back
through ``add_transcript`` whenever the recogniser has them; nothing here waits for one, so the acoustic
observations never depend on transcription keeping up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from audio.analyzer import CallAnalyzer
from audio.events import RATE, AcousticEvent, Interruption, Leg, SpeechEnded, SpeechStarted
from audio.settings import AnalyzerSettings
from service.analysis.redaction import UtteranceRedacted
from service.analysis.text_events import (
    BackchannelConfirmed,
    PhraseEvent,
    SpeakingRateEvent,
    TextEvent,
    UtteranceEvent,
)
from service.analysis.text_rules import RateTracker, TextRules, text_rules

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

