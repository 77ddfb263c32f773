"""Speaking rate from word timings, for the ``speaking_rate`` event.

Rate is words per minute of *speaking* time: pauses longer than ``pause_s`` between words are left
out, so a customer who thinks before answering is not reported as slow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from models.transcriber import Word


@dataclass(frozen=True, slots=True)
class RateSettings:
    window_s: float = 60.0
    """Only words that ended within this many seconds of the latest word count."""
    low_wpm: float = 120.0
    high_wpm: float = 180.0
    min_words: int = 30
    """Fewer words than this give too noisy a rate to report."""
    min_speech_s: float = 20.0
    """Speaking time (pauses capped at ``pause_s``) a rate must be judged over. A greeting rattled off in 6 s
    is not a habit worth coaching; 20 s of talk at the same pace is."""
    pause_s: float = 1.0


@dataclass(frozen=True, slots=True)
class RateReading:
    wpm: float
    words: int
    speech_s: float
    too_slow: bool
    too_fast: bool

    @property
    def outside_range(self) -> bool:
        return self.too_slow or self.too_fast


def words_per_minute(words: Iterable[Word], settings: RateSettings | None = None) -> RateReading | None:
    """Rate over the given words (already limited to a window), or None when there is too little."""
    s = settings or RateSettings()
    ordered = sorted(words, key=lambda w: w.start)
    if len(ordered) < s.min_words:
        return None
    speech = 0.0
    for before, after in zip(ordered, ordered[1:], strict=False):
        speech += min(max(0.0, after.start - before.start), s.pause_s)
    speech += max(0.0, ordered[-1].end - ordered[-1].start)
    if speech < s.min_speech_s:
        return None
    wpm = 60.0 * len(ordered) / speech
    return RateReading(round(wpm, 1), len(ordered), round(speech, 2), wpm < s.low_wpm, wpm > s.high_wpm)


class SpeakingRateTracker:
    """Recent words of one leg; ``add`` the words of each final transcript as it arrives."""

    def __init__(self, settings: RateSettings | None = None) -> None:
        self.settings = settings or RateSettings()
        self._words: deque[Word] = deque()

    def add(self, words: Iterable[Word]) -> RateReading | None:
        self._words.extend(words)
        if not self._words:
            return None
        latest = max(w.end for w in self._words)
        while self._words and self._words[0].end < latest - self.settings.window_s:
            self._words.popleft()
        return words_per_minute(self._words, self.settings)
