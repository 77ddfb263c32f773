"""Lay several utterances end to end in one 30 s Whisper window, and map the words back.

Whisper always attends over 30 s; an utterance of 2 s padded with 28 s of nothing wastes almost all of
that work, while cutting the window short costs accuracy (docs/NOTES.md). Packing fills the window with
real speech from the same language, separated by silence so the decoder sees the boundaries, and the
neighbours act as context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RATE = 16000


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of one utterance placed in a window (long utterances become several pieces)."""

    index: int
    """Position of the utterance in the batch."""
    source_start: int
    """First sample of the stretch, in the utterance's 16 kHz audio."""
    source_end: int
    offset: int
    """Sample at which the stretch starts in the window."""

    @property
    def length(self) -> int:
        return self.source_end - self.source_start


@dataclass(frozen=True, slots=True)
class Window:
    pieces: tuple[Piece, ...]

    @property
    def content_end(self) -> int:
        last = self.pieces[-1]
        return last.offset + last.length

    @property
    def speech_samples(self) -> int:
        return sum(p.length for p in self.pieces)


def plan_windows(lengths: Sequence[tuple[int, int]], *, window_s: float = 30.0, gap_s: float = 1.0) -> list[Window]:
    """Greedy first-fit in the given order; ``lengths`` is (utterance index, samples at 16 kHz).

    The order is kept because neighbours from the same conversation make better context than
    whatever would fill a hole best.
    """
    capacity = int(window_s * RATE)
    gap = int(gap_s * RATE)
    windows: list[Window] = []
    current: list[Piece] = []
    cursor = 0
    for index, length in lengths:
        if length > capacity:
            if current:
                windows.append(Window(tuple(current)))
                current, cursor = [], 0
            windows.extend(_split_long(index, length, capacity))
            continue
        start = cursor + gap if current else 0
        if start + length > capacity:
            windows.append(Window(tuple(current)))
            current, start = [], 0
        current.append(Piece(index, 0, length, start))
        cursor = start + length
    if current:
        windows.append(Window(tuple(current)))
    return windows


def _split_long(index: int, length: int, capacity: int) -> list[Window]:
    # Equal chunks rather than full ones plus a stub: a 2 s tail alone decodes worse than two halves.
    count = -(-length // capacity)
    step = -(-length // count)
    return [Window((Piece(index, s, min(s + step, length), 0),)) for s in range(0, length, step)]


def owner(window: Window, time_s: float) -> Piece:
    """The piece a word at ``time_s`` (window time) belongs to: the nearest one, so words that the
    aligner places in the silence between two utterances still land somewhere sensible."""
    sample = time_s * RATE

    def distance(piece: Piece) -> float:
        if sample < piece.offset:
            return piece.offset - sample
        return max(0.0, sample - (piece.offset + piece.length))

    return min(window.pieces, key=distance)
