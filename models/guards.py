"""Checks against Whisper's known failure modes, applied per utterance after decoding.

Live mode has no temperature fallback (it would multiply the cost of exactly the windows that are
already hard), so bad decodes are withheld instead of retried.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import numpy.typing as npt

COMPRESSION_RATIO_MAX = 2.4
"""Whisper's own threshold: text that gzip shrinks more than this is a repetition loop."""
MAX_WORDS_PER_SECOND = 6.0
"""Fast speakers reach ~4.5 words/s; more words than this for the audio's length is invention."""
SILENCE_DBFS = -55.0
"""Below this RMS level there is nothing to transcribe (line silence, comfort noise)."""
MAX_REPEATS = 3
"""A word or phrase said more than this many times in a row is cut back to this many."""

_WORD = re.compile(r"\S+")


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure, with one byte per character: UTF-8 gives Cyrillic two bytes
    with a shared lead byte, which zlib squeezes, so ordinary Russian prompts scored as loops."""
    data = bytes(ord(c) % 256 for c in text)
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def rms_dbfs(samples: npt.NDArray[np.float32]) -> float:
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * float(np.log10(max(rms, 1e-6)))


def collapse_repeats(words: list[str], max_repeats: int = MAX_REPEATS, max_ngram: int = 6) -> list[int]:
    """Indices of the words to keep once runs of a repeated n-gram are cut to ``max_repeats``.

    Comparison ignores case and punctuation so "no, no, no, no." counts as a loop.
    """
    keys = [re.sub(r"[^\w]", "", w.lower()) for w in words]
    keep = [True] * len(words)
    for n in range(1, max_ngram + 1):
        i = 0
        while i + n <= len(keys):
            gram = keys[i : i + n]
            reps = 1
            while keys[i + reps * n : i + (reps + 1) * n] == gram and any(gram):
                reps += 1
            if reps > max_repeats:
                for j in range(i + max_repeats * n, i + reps * n):
                    keep[j] = False
                i += reps * n
            else:
                i += 1
    return [i for i, k in enumerate(keep) if k]


def too_many_words(text: str, duration_s: float) -> bool:
    count = len(_WORD.findall(text))
    return count > max(4.0, MAX_WORDS_PER_SECOND * duration_s)
