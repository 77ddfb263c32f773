"""Who holds the floor: dead air (nobody) and monologues (one leg, for too long)."""

from __future__ import annotations

from audio.events import LEGS, DeadAir, Leg, Monologue
from audio.frames import FRAME
from audio.settings import FloorSettings


class FloorTracker:
    """Fed with segment boundaries of both legs; emits dead air and monologue events."""

    def __init__(self, settings: FloorSettings) -> None:
        ms = FRAME * 1000 // 8000
        self.dead_air = settings.dead_air_ms // ms
        self.monologue = settings.monologue_ms // ms
        self.taking = settings.floor_taking_ms // ms
        self.open: dict[Leg, int | None] = dict.fromkeys(LEGS)
        self.silence_since: int | None = None  # frame; None before anyone spoke
        self._dead_air_said = False
        self.holder: Leg | None = None
        self.floor_since = 0
        self._monologue_said = False
        self._sound_run = 0
        self.plain_after = settings.plain_vad_after_ms // ms
        self.sound_frames = max(1, settings.sound_ms // ms)

    def on_start(self, leg: Leg, start: int) -> None:
        self.open[leg] = start
        self.silence_since = None

    def on_end(self, leg: Leg, start: int, end: int) -> None:
        self.open[leg] = None
        if end - start >= self.taking:
            self._take(leg, start)
        if all(v is None for v in self.open.values()):
            self.silence_since = max(end, self.silence_since or 0)
            self._dead_air_said = False

    def _take(self, leg: Leg, start: int) -> None:
        if self.holder != leg:
            self.holder, self.floor_since, self._monologue_said = leg, start, False

    def listening(self, i: int) -> bool:
        """In a joint silence, past the plain VAD's own hangover after the last speech: worth a closer listen."""
        return self.silence_since is not None and not self._dead_air_said \
            and i + 1 - self.silence_since >= self.plain_after

    def step(self, i: int, sound: bool = False) -> list[DeadAir | Monologue]:
        """``sound``: either leg is clearly above its noise floor in this frame, speech segment or not."""
        out: list[DeadAir | Monologue] = []
        now = i + 1
        self._sound_run = self._sound_run + 1 if sound else 0
        if self.silence_since is not None and not self._dead_air_said and self._sound_run >= self.sound_frames:
            # Quiet speech the VAD did not segment (a soft voice on a noisy line) is not silence either.
            self.silence_since = now
        if self.silence_since is not None:
            if not self._dead_air_said and now - self.silence_since >= self.dead_air:
                self._dead_air_said = True
                out.append(DeadAir(self.silence_since * FRAME, (now - self.silence_since) * FRAME, now * FRAME))
                # A long silence hands the floor back: whoever speaks next starts afresh.
                self.holder = None
            return out
        long_enough = [leg for leg in LEGS if (s := self.open[leg]) is not None and now - s >= self.taking]
        if long_enough and self.holder not in long_enough:
            # Both long: the later starter is the one taking the floor over.
            leg = max(long_enough, key=lambda lg: self.open[lg] or 0)
            self._take(leg, self.open[leg] or 0)
        if self.holder is not None and not self._monologue_said and self.open[self.holder] is not None \
                and now - self.floor_since >= self.monologue:
            self._monologue_said = True
            out.append(Monologue(self.holder, self.floor_since * FRAME, (now - self.floor_since) * FRAME,
                                 now * FRAME))
        return out
