"""Transcription for ``callwatch analyze``: the live transcriber, called synchronously, segment batches in order."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from service.analysis.monitor import Segment

Result = tuple[str, list[tuple[str, float, float]], str | None]


def build_offline_asr(model: str | None, language: str | None) -> Callable[[Sequence[Segment]], list[Result]]:
    from models.transcriber import Utterance
    from models.whisper import load_transcriber

    transcriber = load_transcriber(model or os.environ.get("CALLWATCH_MODEL", "base"), language=language,
                                   threads=max(1, os.cpu_count() or 1))

    def transcribe(segments: Sequence[Segment]) -> list[Result]:
        utts = [Utterance("analyze", s.leg, s.start_s, s.end_s, s.audio, 8000, language) for s in segments]
        out: list[Result] = []
        for tr in transcriber.transcribe_batch(utts):
            out.append((tr.text, [(w.word, w.start, w.end) for w in tr.words], tr.language))
        return out

    return transcribe
