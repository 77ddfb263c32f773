"""Lay several utterances end to end in one 30 s Whisper window, and map the words back.

Stock Whisper always attends over 30 s; an utterance of 2 s padded with 28 s of nothing wastes almost all of
that work, while cutting the window tight around it costs accuracy (the shared data's NOTES.md; the
transcriber keeps at least 3 s of silence and 10 s in all, ``whisper.DecodeSettings.fit_s``). Packing fills
the window with real speech from the same language, separated by silence so the decoder sees the boundaries,
and the neighbours act as context.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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


Span = tuple[int, int, int]
"""(utterance index, first sample, end sample) of 16 kHz audio to place in a window."""


def plan_windows(spans: Sequence[Span], *, window_s: float = 30.0, gap_s: float = 1.0) -> list[Window]:
    """First fit: each span goes into the first window that still has room for it after a gap.

    Filling earlier windows' holes keeps the number of windows, and so the encoder passes, close to
    the minimum; spans longer than a window must be cut first (``split_at_pauses``).
    """
    capacity = int(window_s * RATE)
    gap = int(gap_s * RATE)
    windows: list[list[Piece]] = []
    cursors: list[int] = []
    for index, start, end in spans:
        length = end - start
        if length > capacity:
            raise ValueError(f"span of {length} samples exceeds the {capacity}-sample window")
        for w, cursor in enumerate(cursors):
            if cursor + gap + length <= capacity:
                windows[w].append(Piece(index, start, end, cursor + gap))
                cursors[w] = cursor + gap + length
                break
        else:
            windows.append([Piece(index, start, end, 0)])
            cursors.append(length)
    return [Window(tuple(pieces)) for pieces in windows]


def split_at_pauses(
    samples: npt.NDArray[np.float32], max_len: int, *, search_s: float = 3.0, frame: int = RATE // 50
) -> list[tuple[int, int]]:
    """Cut audio longer than ``max_len`` into near-equal stretches, each cut at the quietest 20 ms
    within ``search_s`` of the ideal point, so words are not sliced in half."""
    total = samples.size
    cuts = [0]
    while total - cuts[-1] > max_len:
        start = cuts[-1]
        parts = -(-(total - start) // max_len)
        ideal = start + (total - start) // parts
        lo = max(start + frame, ideal - int(search_s * RATE))
        hi = min(start + max_len, ideal + int(search_s * RATE))
        frames = (hi - lo) // frame
        if frames < 1:
            cuts.append(min(start + max_len, ideal))
            continue
        energy = np.square(samples[lo : lo + frames * frame].reshape(frames, frame)).sum(axis=1)
        cuts.append(lo + int(np.argmin(energy)) * frame + frame // 2)
    cuts.append(total)
    return list(zip(cuts, cuts[1:], strict=False))


def owner(window: Window, time_s: float) -> Piece:
    """The piece a word at ``time_s`` (window time) belongs to: the nearest one, so words that the
    aligner places in the silence between two utterances still land somewhere sensible."""
    sample = time_s * RATE

    def distance(piece: Piece) -> float:
        if sample < piece.offset:
            return piece.offset - sample
        return max(0.0, sample - (piece.offset + piece.length))

    return min(window.pieces, key=distance)


FRAME = RATE // 50
"""20 ms of 16 kHz audio: the unit in which a window's speech is located for word ownership."""


def speech_frames(
    samples: npt.NDArray[np.float32], window: Window, *, floor_db: float = -55.0, below_peak_db: float = 25.0,
    above_quiet_db: float = 6.0,
) -> npt.NDArray[np.bool_]:
    """Which 20 ms frames of a packed window hold a piece's speech rather than the silence at its edges.

    Each piece is judged against its own levels: a frame is speech when it is within ``below_peak_db`` of the
    piece's loud frames (95th percentile), ``above_quiet_db`` over its quiet ones (5th percentile: the line's
    noise, on a noisy line) and above ``floor_db``. The silence between pieces is never speech."""
    n = samples.size // FRAME
    energy = np.mean(np.square(samples[: n * FRAME].reshape(n, FRAME), dtype=np.float64), axis=1)
    level = 10.0 * np.log10(energy + 1e-12)
    mask = np.zeros(n, dtype=np.bool_)
    for p in window.pieces:
        first, end = p.offset // FRAME, min(n, -(-(p.offset + p.length) // FRAME))
        if end <= first:
            continue
        own = level[first:end]
        loud, quiet = np.percentile(own, [95.0, 5.0])
        bar = max(floor_db, float(loud) - below_peak_db, float(quiet) + above_quiet_db)
        mask[first:end] = own > bar
    return mask


def speaker(window: Window, start_s: float, end_s: float, speech: npt.NDArray[np.bool_] | None) -> Piece:
    """The piece a word aligned at ``start_s``-``end_s`` (window time) belongs to: the one whose speech it
    covers most (``speech_frames``), else the nearest to its middle (``owner``).

    The aligner stretches a word over the silence before it: the first word of an utterance often starts
    in the trailing silence of the one before, far enough that its middle lies there. Its speech does not,
    so counting speech frames, not time, keeps it with its own utterance."""
    if speech is not None:
        first = max(0, int(start_s * 50))
        end = min(speech.size, max(first + 1, math.ceil(end_s * 50)))
        best: Piece | None = None
        most = 0
        for p in window.pieces:
            lo = max(first, p.offset // FRAME)
            hi = min(end, -(-(p.offset + p.length) // FRAME))
            frames = int(np.count_nonzero(speech[lo:hi])) if hi > lo else 0
            if frames > most:
                best, most = p, frames
        if best is not None:
            return best
    return owner(window, (start_s + end_s) / 2)
