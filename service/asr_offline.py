"""Transcription for ``callwatch analyze``: the live transcriber, called synchronously, segment batches in order."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from service.monitor import Segment, TextRules

Result = tuple[str, list[tuple[str, float, float]], str | None]


def build_offline_asr(model: str | None, language: str | None) -> tuple[Callable[[Sequence[Segment]], list[Result]],
                                                                        TextRules | None]:
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

    return transcribe, text_rules()


def text_rules() -> TextRules | None:
    try:
        from models.cues import find_cues, is_backchannel
        from models.redact import redact
    except ModuleNotFoundError:
        return None
    from service.monitor import Cue

    def cues(text: str, leg: str, language: str | None) -> list[Cue]:
        return [Cue(c.category, c.text) for c in find_cues(text, leg, language)]

    return TextRules(redact=redact, find_cues=cues, is_backchannel=is_backchannel)
