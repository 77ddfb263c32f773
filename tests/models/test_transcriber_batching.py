"""WhisperTranscriber's packing, retry and reassembly, with the model call replaced by a fake."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from models.packing import RATE, Window
from models.transcriber import Utterance, Word
from models.whisper import DecodeSettings, WhisperTranscriber, _Decoded


class SkippingTranscriber(WhisperTranscriber):
    """On the first pass the "decoder" stops after the first piece of each window, as Whisper
    sometimes does at a pause; on later passes it transcribes every piece."""

    def __init__(self) -> None:
        fake: Any = SimpleNamespace(model=SimpleNamespace(is_multilingual=True))
        super().__init__(fake, settings=DecodeSettings(batch_windows=2))
        self.passes: list[list[list[int]]] = []

    def _decode(
        self, batch: Sequence[tuple[str | None, Window]], audio: Sequence[npt.NDArray[np.float32]]
    ) -> list[_Decoded]:
        first_pass = not self.passes
        self.passes.append([[p.index for p in w.pieces] for _, w in batch])
        out = []
        for language, window in batch:
            pieces = window.pieces[:1] if first_pass else window.pieces
            words = [
                (p, Word(f" w{p.index}.{p.source_start // RATE}", p.source_start / RATE, p.source_end / RATE, 0.9))
                for p in pieces
            ]
            missed = window.pieces[1:] if first_pass else ()
            out.append(_Decoded(words, language or "en", False, missed))
        return out


def utt(call: str, seconds: float, language: str | None = "en", start: float = 0.0) -> Utterance:
    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 2000, int(seconds * 8000))).astype(np.int16)
    return Utterance(call, "customer", start, start + seconds, audio, 8000, language)


def test_skipped_utterances_get_a_second_pass_and_results_keep_their_order() -> None:
    t = SkippingTranscriber()
    batch = [utt("a", 2), utt("b", 3, "ru"), utt("c", 2), utt("d", 2, "ru"), utt("e", 2)]
    results = t.transcribe_batch(batch)
    assert [r.text for r in results] == ["w0.0", "w1.0", "w2.0", "w3.0", "w4.0"]
    assert [r.language for r in results] == ["en", "ru", "en", "ru", "en"]
    # Languages are never packed together; only the skipped ones are decoded again.
    assert t.passes[0] == [[0, 2, 4], [1, 3]]
    assert sorted(i for window in t.passes[1] for i in window) == [2, 3, 4]
    assert len(t.passes) == 2


def test_word_times_are_call_times_and_long_audio_is_reassembled() -> None:
    t = SkippingTranscriber()
    (result,) = t.transcribe_batch([utt("a", 70, start=100.0)])
    assert len(result.words) == 3 and result.text.startswith("w0.0 ")
    assert [w.start for w in result.words] == sorted(w.start for w in result.words)
    assert result.words[0].start == 100.0
    assert 169.0 <= result.words[-1].end <= 170.0


def test_unknown_language_is_packed_per_speaker() -> None:
    t = SkippingTranscriber()
    t.transcribe_batch([utt("a", 2, None), utt("b", 2, None), utt("a", 2, None)])
    assert t.passes[0] == [[0, 2], [1]]


def test_silence_is_not_decoded() -> None:
    t = SkippingTranscriber()
    quiet = Utterance("q", "agent", 0.0, 2.0, np.zeros(16000, dtype=np.int16), 8000, "en")
    (result,) = t.transcribe_batch([quiet])
    assert result.text == "" and result.rejected == "silence"
    assert t.passes == []
