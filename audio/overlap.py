"""Interruptions: one leg talking over the other mid-utterance and taking the floor.

Conversation analysis (Schegloff 2000) separates competitive overlap from the overlaps that participants do
not treat as a problem: continuers ("mm-hm": the listener leaves the floor where it is), terminal overlaps
(the next speaker starts as the current one finishes), the floor holder carrying on over the listener's
"yeah", and choral talk such as laughter. The rules here decide from the audio alone, as a ``--no-asr``
deployment must; the words, when they come, can still withdraw a decision (``service.analysis.monitor``).

A newcomer's onset while the other leg is mid-utterance is a candidate. It is an interruption only once the
newcomer has taken the floor: the other stops while the newcomer carries on (a cut-off), or both keep
talking through ``competitive_ms`` (competitive overlap). A newcomer that stops first gave a listener
response; an other that stops within ``min_overlap_ms`` was finishing its turn, unless it stopped at full voice
(``abrupt_min_overlap_ms``): a turn that ends falls in level first.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from audio.events import Backchannel, Interruption, Leg, other
from audio.frames import FRAME
from audio.settings import InterruptionSettings

LEVELS_KEPT = 250
"""Frames of level history kept (5 s): a decision looks back at most 1.3 s past the onset plus 1 s before it."""

CONFIDENCE = {"competitive": 0.97, "cutoff": 0.92, "short cutoff": 0.69}
"""Precision of each kind of decision on the labelled generated calls (dev, dev-phone and fourteen natural sets,
clean and phone, 283 decisions, measured 2026-12-04): both talking 1.3 s (95 of 98 right), the other stopping
after 500 ms of overlap (155 of 169), and after 400-500 ms at full voice (11 of 16). The alert rules show the
less certain ones only as part of a pattern."""


@dataclass(slots=True)
class _Candidate:
    by: Leg
    start: int  # frame index of the newcomer's onset


class VoicedHistory:
    """One byte per frame per leg: whether it was voiced. An hour of call is 180 kB per leg."""

    def __init__(self) -> None:
        self.flags: dict[Leg, bytearray] = {"customer": bytearray(), "agent": bytearray()}
        self.sound: dict[Leg, bytearray] = {"customer": bytearray(), "agent": bytearray()}
        """Frames that are clearly the leg's own voice, voiced or not: above the noise floor, near the leg's speech
        level (breaths, room noise and the other leg's bleed sit far below it), not echo."""
        self.levels: dict[Leg, array[float]] = {"customer": array("f"), "agent": array("f")}
        """The recent frames' levels (dBFS), from frame ``level_origin`` on: only the last ``LEVELS_KEPT`` are
        ever asked for, so older ones are dropped now and then."""
        self.level_origin = 0

    def append(self, customer: bool, agent: bool, customer_sound: bool, agent_sound: bool,
               customer_db: float = -100.0, agent_db: float = -100.0) -> None:
        self.levels["customer"].append(customer_db)
        self.levels["agent"].append(agent_db)
        if len(self.levels["customer"]) >= 2 * LEVELS_KEPT:
            for levels in self.levels.values():
                del levels[:LEVELS_KEPT]
            self.level_origin += LEVELS_KEPT
        self.flags["customer"].append(customer)
        self.flags["agent"].append(agent)
        self.sound["customer"].append(customer_sound or customer)
        self.sound["agent"].append(agent_sound or agent)

    def last_sound(self, leg: Leg, first: int, last: int) -> int:
        return self.sound[leg].rfind(1, max(first, 0), last)

    def count(self, leg: Leg, first: int, last: int) -> int:
        """Voiced frames of ``leg`` in [first, last)."""
        return self.flags[leg].count(1, max(first, 0), last)

    def last_voiced(self, leg: Leg, first: int, last: int) -> int:
        """Index of the last voiced frame in [first, last), or -1."""
        return self.flags[leg].rfind(1, max(first, 0), last)

    def talking(self, leg: Leg, first: int, last: int, bridge: int, extra: list[int] | None = None) -> list[bool]:
        """Per frame in [first, last): whether ``leg`` was talking, i.e. a frame of sound (or one of ``extra``),
        or a gap of up to ``bridge`` frames between two (the stops and short pauses inside a phrase)."""
        sound = self.sound[leg]
        first = max(first, 0)
        out = [False] * max(last - first, 0)
        hits = sorted({i for i in range(first, last) if sound[i]} | {i for i in extra or () if first <= i < last})
        prev = -1
        for i in hits:
            lo = prev + 1 if prev >= 0 and i - prev <= bridge + 1 else i
            for k in range(lo, i + 1):
                out[k - first] = True
            prev = i
        return out

    def longest_gap(self, leg: Leg, first: int, last: int, extra: list[int] | None = None) -> int:
        """The longest run of frames without sound of ``leg`` in [first, last), counting one at the end
        (``extra``: more frames where it was heard)."""
        sound, longest, prev = self.sound[leg], 0, max(first, 0) - 1
        if extra:
            hits = sorted({*(i for i in range(max(first, 0), last) if sound[i]),
                           *(i for i in extra if first <= i < last)})
            for i in hits:
                longest = max(longest, i - prev - 1)
                prev = i
            return max(longest, last - prev - 1)
        i = sound.find(1, max(first, 0), last)
        while i >= 0:
            longest = max(longest, i - prev - 1)
            prev = i
            i = sound.find(1, i + 1, last)
        return max(longest, last - prev - 1)

    def level(self, leg: Leg, i: int) -> float:
        """Frame ``i``'s level (dBFS); -100 once it has been dropped from the kept history."""
        k = i - self.level_origin
        kept = self.levels[leg]
        return kept[k] if 0 <= k < len(kept) else -100.0

    def median_level(self, leg: Leg, first: int, last: int) -> float | None:
        """Median level of the leg's frames of sound in [first, last), or None without any."""
        first = max(first, self.level_origin)
        kept = self.levels[leg]
        levels = sorted(kept[i - self.level_origin] for i in range(first, last) if self.sound[leg][i])
        return levels[len(levels) // 2] if levels else None

    def overlap(self, a: Leg, b: Leg, first: int, last: int, bridge: int, extra: list[int] | None = None) -> int:
        """Frames in [first, last) where both legs were talking (``extra``: more frames where ``a`` was)."""
        return sum(x and y for x, y in zip(self.talking(a, first, last, bridge, extra),
                                           self.talking(b, first, last, bridge), strict=True))


class InterruptionDetector:
    """Decides, between ``min_burst_ms`` and ``competitive_ms`` after a leg's onset during the other's
    utterance, whether the newcomer took the floor.

    ``periodic(leg, first, last)``: the last frame in [first, last) with a clear pitch, or -1. Soft speech on
    a noisy line keeps its periodicity where its level no longer stands out; it is costly, so it is asked
    only for the few frames around a candidate. ``voicing(leg, first, last)``: the share of the leg's frames
    of sound in [first, last) that have a clear pitch (speech is mostly voiced, laughter and noise are not).
    ``holder()``: the leg that holds the floor (the last one to talk for ``floor_taking_ms``), or None.
    """

    def __init__(self, settings: InterruptionSettings, history: VoicedHistory,
                 periodic: Callable[[Leg, int, int], int] | None = None,
                 voicing: Callable[[Leg, int, int], float] | None = None,
                 holder: Callable[[], Leg | None] | None = None,
                 periodic_frames: Callable[[Leg, int, int], list[int]] | None = None) -> None:
        ms = FRAME * 1000 // 8000
        self.simultaneous = settings.simultaneous_start_ms // ms
        self.min_overlap = settings.min_overlap_ms // ms
        self.burst = settings.min_burst_ms // ms
        self.competitive = max(self.burst, settings.competitive_ms // ms)
        self.still_talking = settings.still_talking_ms // ms
        self.yielded = settings.yield_ms // ms
        self.cutoff = max(self.yielded, settings.cutoff_ms // ms)
        self.response_gap = settings.response_gap_ms // ms
        self.lead_in = settings.lead_in_ms // ms
        self.abrupt_overlap = settings.abrupt_min_overlap_ms // ms
        self.abrupt_drop_db = settings.abrupt_drop_db
        self.level_before, self.level_end = 1000 // ms, 200 // ms
        self.bridge = settings.bridge_ms // ms
        self.pause = settings.mid_turn_pause_ms // ms
        self.continuing = settings.continuing_ms // ms
        self.resume_pause = settings.resume_pause_ms // ms
        self.response = settings.listener_response_ms // ms
        self.min_voicing = settings.min_voicing
        self.resumed = settings.resumed_turn
        self._taken: dict[Leg, int] = {"customer": -(10**9), "agent": -(10**9)}
        self.history = history
        self.periodic = periodic
        self.voicing = voicing
        self.holder = holder
        self.periodic_frames = periodic_frames
        self._pending: list[_Candidate] = []

    def on_onset(self, by: Leg, start: int, other_in_speech: bool, other_start: int) -> None:
        """``other_start``: onset of the other leg's current (or, if closed, last) segment."""
        of = other(by)
        if other_start > start - self.simultaneous and not (
                self.resumed and self.history.last_voiced(of, other_start - self.pause, other_start) >= 0):
            # Both began together, unless the other's segment only resumed its own turn (a soft stretch the
            # VAD lost closed it): it was voiced within ``mid_turn_pause_ms`` before this segment.
            return
        if self._resuming(by, start, other_start):
            # The segmenter's onset of the same resumed speech may follow a soft onset by a few frames: it is
            # the same burst, not a new start over the listener.
            self._taken[by] = start
            return
        # Mid-turn: still in a segment, or paused briefly inside its turn (a soft stretch the VAD missed).
        recent = self.history.last_voiced(of, start - self.pause, start) >= 0
        if not (other_in_speech or recent) and self.periodic is not None:
            recent = self.periodic(of, start - self.pause // 2, start) >= 0
        if (other_in_speech or recent) and start >= self._taken[by] + self.burst:
            # One candidate per burst of the newcomer: a soft onset and the segmenter's may both report it.
            self._taken[by] = start
            self._pending.append(_Candidate(by, start))

    def _resuming(self, by: Leg, start: int, other_start: int) -> bool:
        """The floor holder carrying on after a short pause into which the listener said "yeah": the listener
        began in that pause and has not talked long enough to take the floor."""
        if self.holder is None or self.holder() != by:
            return False
        own_last = self.history.last_voiced(by, start - self.resume_pause, start)
        if own_last < 0:
            # On a noisy line the end of a phrase is often heard but not voiced by the VAD: the pause before the
            # resumption is measured from its own last sound then.
            own_last = self.history.last_sound(by, start - self.resume_pause, start)
        return own_last >= 0 and other_start >= own_last - self.bridge and start - other_start < self.response

    def _began(self, leg: Leg, onset: int) -> int:
        """Where ``leg``'s speech leading into ``onset`` began: its sound without a gap over ``bridge``, at most
        ``lead_in`` frames earlier."""
        first = onset
        for i in range(onset - 1, max(onset - self.lead_in, 0) - 1, -1):
            if self.history.sound[leg][i]:
                first = i
            elif first - i > self.bridge:
                break
        return first

    def _stopped_at_full_voice(self, leg: Leg, onset: int, last: int) -> bool:
        """Whether ``leg`` stopped as loud as it spoke in the second before the onset: cut off mid-word. A turn
        that ends falls in level first."""
        before = self.history.median_level(leg, onset - self.level_before, onset)
        end = self.history.median_level(leg, last + 1 - self.level_end, last + 1)
        return before is not None and end is not None and end - before >= -self.abrupt_drop_db

    def step(self, i: int) -> list[Interruption | Backchannel]:
        """Called after frame ``i`` was appended to the history."""
        if not self._pending:
            return []
        out: list[Interruption | Backchannel] = []
        keep = []
        now = i + 1
        for c in self._pending:
            if now - c.start < self.burst:
                keep.append(c)
                continue
            verdict = self._decide(c, now)
            if verdict is None:
                keep.append(c)
            elif verdict is not False:
                out.append(verdict)
        self._pending = keep
        return out

    def _decide(self, c: _Candidate, now: int) -> Interruption | Backchannel | Literal[False] | None:
        """None: not yet known; False: no event; otherwise the event."""
        h, by, of = self.history, c.by, other(c.by)
        other_last = h.last_sound(of, c.start, now)
        # The other must be carrying on through the onset, not starting anew (a listener response of its own).
        carrying_on = h.last_sound(of, c.start, c.start + self.continuing) >= 0
        if not carrying_on and self.periodic is not None:
            soft = self.periodic(of, c.start, c.start + self.continuing)
            carrying_on, other_last = soft >= 0, max(other_last, soft)
        if not carrying_on:
            return False
        other_talking = other_last >= now - self.yielded
        deadline = now - c.start >= self.competitive
        if h.longest_gap(by, c.start, now) >= self.response_gap and (
                self.periodic_frames is None
                or h.longest_gap(by, c.start, now, self.periodic_frames(by, c.start, now)) >= self.response_gap):
            # The newcomer fell silent while the other went on: a listener response, however long. What it
            # says after that gap is a new start, judged on its own. (Silent by its pitch too: a soft voice on a
            # noisy line keeps its pitch through the frames where its level drowns.)
            return Backchannel(by, c.start * FRAME, now * FRAME) if other_last >= 0 else False
        talking = h.last_sound(by, now - self.still_talking, now) >= 0
        if not talking and other_talking:
            return None  # a pause inside the newcomer's phrase, unless it grows into a gap
        if not deadline and (other_talking or other_last >= now - self.cutoff):
            return None  # both still talking: wait for one of them to give way
        # Overlap from the newcomer's first sound: a segment opens a few frames into the speech (later on a
        # soft voice), and a turn-end overlap and a cut-off differ by a few hundred milliseconds.
        began = self._began(by, c.start)
        overlap = h.overlap(of, by, began, now, self.bridge)
        if overlap < self.min_overlap and self.periodic_frames is not None:
            # A soft voice under a loud one (a noisy line, or under the agent where the echo gate mutes the
            # customer) keeps its pitch where its level no longer shows: count its clearly pitched frames too.
            extra = self.periodic_frames(of, c.start, now)
            if extra:
                overlap = h.overlap(of, by, began, now, self.bridge, extra=extra)
                other_last = max(other_last, extra[-1])
                other_talking = other_last >= now - self.yielded
                if not deadline and other_last >= now - self.cutoff:
                    return None
        if overlap < self.min_overlap and not (overlap >= self.abrupt_overlap and not other_talking
                                               and self._stopped_at_full_voice(of, c.start, other_last)):
            return False  # the other was finishing its turn: a terminal overlap
        if self.voicing is not None and self.voicing(by, c.start, now) < self.min_voicing:
            return False  # laughter, a cough, noise: not speech that takes a turn
        kind: Literal["cutoff", "competitive"] = "competitive" if other_talking else "cutoff"
        sure = CONFIDENCE[kind if overlap >= self.min_overlap else "short cutoff"]
        return Interruption(by, of, c.start * FRAME, overlap * FRAME, now * FRAME, kind, sure)
