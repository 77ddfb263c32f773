"""WhisperTranscriber's packing, retry and reassembly, with the model call replaced by a fake."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from models.packing import RATE, Piece, Window, plan_windows
from models.transcriber import Utterance, Word
from models.whisper import DecodeSettings, Isolation, WhisperTranscriber, _Decoded


class SkippingTranscriber(WhisperTranscriber):
    """On the first pass the "decoder" stops after the first piece of each window, as Whisper
    sometimes does at a pause; on later passes it transcribes every piece."""

    def __init__(self, isolation: Isolation = "shared") -> None:
        fake: Any = SimpleNamespace(model=SimpleNamespace(is_multilingual=True))
        super().__init__(fake, settings=DecodeSettings(batch_windows=2, isolation=isolation))
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
    assert sorted(t.passes[0]) == [[0, 2, 4], [1, 3]]
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
    assert sorted(t.passes[0]) == [[0, 2], [1]]


def test_by_default_a_window_never_holds_two_calls_not_even_on_the_second_pass() -> None:
    assert DecodeSettings().isolation == "call"
    t = SkippingTranscriber(isolation="call")
    t.settings = DecodeSettings(batch_windows=8, isolation="call")  # each pass one model call
    calls = ["a", "b", "a", "c", "b", "a", "c", "a"]
    batch = [utt(c, 2, None if k == 7 else "en") for k, c in enumerate(calls)]
    results = t.transcribe_batch(batch)
    assert [r.text for r in results] == [f"w{k}.0" for k in range(len(calls))]
    assert len(t.passes) == 2
    for windows in t.passes:
        for window in windows:
            assert len({calls[i] for i in window}) == 1, f"a window held calls {[calls[i] for i in window]}"
    # One call's utterances still share a window: the first pass has one per call and language.
    assert sorted(t.passes[0]) == [[0, 2, 5], [1, 4], [3, 6], [7]]
    # Retried pieces of one call are packed together again, never with another call's.
    assert sorted(t.passes[1]) == [[2, 5], [4], [6]]


def test_silence_is_not_decoded() -> None:
    t = SkippingTranscriber()
    quiet = Utterance("q", "agent", 0.0, 2.0, np.zeros(16000, dtype=np.int16), 8000, "en")
    (result,) = t.transcribe_batch([quiet])
    assert result.text == "" and result.rejected == "silence"
    assert t.passes == []


class _Tokens:
    sot_sequence = (50258, 50259, 50359)
    eot = 50257
    no_timestamps = 50363
    timestamp_begin = 50364


class MemoryRecorder(WhisperTranscriber):
    """Runs the per-utterance decoding on an encoder output whose every frame says whose audio it came from,
    and keeps the memory each decoder sequence was given."""

    def __init__(self, settings: DecodeSettings) -> None:
        self.memories: list[npt.NDArray[np.float32]] = []
        self.prompts: list[list[int]] = []

        def generate(encoded: Any, prompts: list[list[int]], **_: Any) -> list[Any]:
            self.memories.extend(np.asarray(encoded))
            self.prompts.extend(prompts)
            return [SimpleNamespace(sequences_ids=[[]], scores=[0.0], no_speech_prob=0.0) for _ in prompts]

        fake: Any = SimpleNamespace(model=SimpleNamespace(is_multilingual=True, generate=generate), max_length=448)
        super().__init__(fake, settings=settings)

    def _tokenizer(self, language: str) -> Any:
        return _Tokens()

    def _suppressed(self, tokenizer: Any) -> list[int]:
        return []


def owners(window: Window, frames: int = 1500) -> npt.NDArray[np.float32]:
    """An encoder output of one window: each 20 ms frame holds 1 + the index of the utterance heard in it
    (rounded outwards, as a frame straddling an edge hears both), 0 for silence."""
    out = np.zeros((frames, 4), dtype=np.float32)
    for p in window.pieces:
        out[p.offset // 320 : -(-(p.offset + p.length) // 320)] = p.index + 1
    return out


def test_each_utterance_is_decoded_over_its_own_frames_and_silence_only() -> None:
    settings = DecodeSettings(isolation="utterance", gap_s=0.5)
    t = MemoryRecorder(settings)
    lengths = [2.0, 0.3, 7.5, 1.1, 3.0, 0.5, 4.2, 2.6]  # seconds; packs into one window with the reserved tail
    spans = [(i, 0, int(s * RATE)) for i, s in enumerate(lengths)]
    windows = plan_windows(spans, window_s=settings.window_s - settings.tail_s, gap_s=settings.gap_s)
    assert len(windows) == 1 and len(windows[0].pieces) == len(lengths)
    encoded = np.stack([owners(w) for w in windows])
    assert not encoded[0, -int(settings.tail_s * 50) :].any()  # the reserved end of the window is silent
    decoded = t._generate(encoded, windows, "en")
    assert len(decoded) == 1 and not decoded[0].words
    assert len(t.memories) == len(lengths)
    seen = set()
    for memory, prompt in zip(t.memories, t.prompts, strict=True):
        heard = set(np.unique(memory)) - {0.0}
        assert len(heard) == 1, f"a decoder heard utterances {heard}"
        seen |= heard
        # It starts reading at the timestamp of its own stretch of the window.
        index = int(heard.pop()) - 1
        piece = next(p for p in windows[0].pieces if p.index == index)
        start = prompt[-1] - _Tokens.timestamp_begin
        assert 0 <= piece.offset / 320 - start <= 0.2 * 50 + 1
    assert seen == {float(i + 1) for i in range(len(lengths))}


def test_a_doubtful_decode_is_done_again_alone() -> None:
    class Doubting(MemoryRecorder):
        alone: list[list[int]] = []

        def _decode_spans(self, frames: Any, spans: Any, tokenizer: Any, prompt: list[int]) -> list[Any]:
            # The second utterance of each window ran on past its audio.
            return [([(s.piece, Word(f" w{s.piece.index}", 0.0, 0.1, 0.9))], False, s.piece.index == 1)
                    for s in spans]

        def _generate_shared(self, encoded: Any, windows: Any, language: str, speech: Any = None) -> list[_Decoded]:
            self.alone.append([p.index for w in windows for p in w.pieces])
            return [_Decoded([(w.pieces[0], Word(" again", 0.0, 0.1, 0.9))], language, False) for w in windows]

        def _decode(self, batch: Any, audio: Any) -> list[_Decoded]:
            encoded = np.stack([owners(w) for _, w in batch])
            return self._generate(encoded, [w for _, w in batch], "en")

    t = Doubting(DecodeSettings(isolation="utterance"))
    results = t.transcribe_batch([utt("a", 2), utt("b", 2), utt("c", 2)])
    assert [r.text for r in results] == ["w0", "again", "w2"]
    assert t.alone == [[1]]  # decoded alone: a window of its own


def test_with_fitted_windows_a_batch_holds_windows_of_like_fullness() -> None:
    t = SkippingTranscriber(isolation="call")
    t.settings = DecodeSettings(batch_windows=2, isolation="call", fit_s=3.0)
    t.transcribe_batch([utt("a", 20), utt("b", 2), utt("c", 21), utt("d", 3)])
    # One window per call; the two short ones are encoded together (10 s), the two long ones together (25 s).
    assert t.passes[0] == [[1], [3]] or t.passes[0] == [[3], [1]]
    assert sorted(t.passes[1]) == [[0], [2]]


def test_a_batch_is_encoded_over_its_fullest_window_plus_silence_in_whole_five_seconds() -> None:
    t = SkippingTranscriber(isolation="call")
    t.settings = DecodeSettings(isolation="call", fit_s=3.0, min_fit_s=10.0)

    def window(seconds: float) -> Window:
        return Window((Piece(0, 0, int(seconds * RATE), 0),))

    assert t._encoded_samples([window(2)]) == 10 * RATE  # never shorter than min_fit_s
    assert t._encoded_samples([window(2), window(20)]) == 25 * RATE
    assert t._encoded_samples([window(28)]) == 30 * RATE  # never longer than a window
    t.settings = DecodeSettings(isolation="call", fit_s=0.0)
    assert t._encoded_samples([window(2)]) == 30 * RATE
    t.settings = DecodeSettings(isolation="utterance", fit_s=3.0)  # it reads the window's silent end
    assert t._encoded_samples([window(2)]) == 30 * RATE


class StretchingTranscriber(SkippingTranscriber):
    """The aligner stretches each piece's word back over the silence packed before it, and past its end."""

    def _decode(
        self, batch: Sequence[tuple[str | None, Window]], audio: Sequence[npt.NDArray[np.float32]]
    ) -> list[_Decoded]:
        return [_Decoded([(p, Word(" digits", p.source_start / RATE - 1.2, p.source_end / RATE + 0.4, 0.9))
                          for p in window.pieces], language or "en", False, ()) for language, window in batch]


def test_a_word_stretched_over_the_silence_around_its_utterance_stays_within_it() -> None:
    t = StretchingTranscriber()
    results = t.transcribe_batch([utt("a", 1.5, start=10.0), utt("a", 1.0, start=12.0)])
    assert [(w.start, w.end) for r in results for w in r.words] == [(10.0, 11.5), (12.0, 13.0)]
