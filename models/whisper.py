"""faster-whisper behind the ``Transcriber`` protocol, tuned for many short utterances.

Stock ``WhisperModel.transcribe()`` pads each utterance to 30 s, so a 2 s reply costs a whole
window. Here utterances of one language are packed into 30 s windows (``models.packing``) and several
windows go through the encoder as one batch, encoded only over as much of the window as its speech needs
(``DecodeSettings.fit_s``): encoder passes, and encoder frames, are what packing and fitting save.

Which utterances share a window (``DecodeSettings.isolation``). By default (``call``) a window holds one
call's utterances only, and the windows of several calls are batched through the encoder and the decoder,
whose batch members never attend to each other: no decoder ever sees another call's audio, so no word can
be attributed across calls, whatever the alignment does (issue 13). ``shared`` packs every call's
utterances together (fewer windows, so faster under load, but a boundary word can land in another call's
transcript); it stays selectable to measure against. Within a window, each is decoded as one text and its
words are handed back to the utterances by ``packing.speaker``: to the one whose *speech* the word's aligned
time covers most, not the one nearest its middle, because the aligner stretches an utterance's first word
back over the silence before it, far enough to land it in the previous utterance.

Per-utterance decoding (``isolation="utterance"``): each utterance gets its own decoder sequence,
whose cross-attention memory is only the encoder frames of that utterance's own stretch of the window
(plus a margin of the silence around it, less than half the gap) followed by the window's last seconds,
kept free of speech for this. It is prompted with the timestamp at which its stretch starts, and what it
says after the timestamp where its audio ends is cut. No decoder ever sees the frames of another
utterance, but the encoder's self-attention still spans the whole window. Measured far less accurate
(WER en 0.114 / ru 0.191 against 0.056 / 0.134 for one text per window), it stays for the day that is fixed.
A decode that ran on past its audio, repeated itself or was unsure is done again with the utterance alone in
a window.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import ctranslate2
import numpy as np
import numpy.typing as npt
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import merge_punctuations

from models import guards
from models.packing import RATE, Piece, Span, Window, plan_windows, speaker, speech_frames, split_at_pauses
from models.resolve import ModelError, resolve_model
from models.transcriber import Transcript, Utterance, Word
from models.waveform import to_whisper_rate

_FRAMES = 3000  # mel frames in one 30 s window
_HOP = 320  # samples of 16 kHz audio per encoder frame (20 ms; two mel frames)
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


Isolation = Literal["call", "shared", "utterance"]
"""How far apart utterances are kept once packed. ``call`` (the default): windows hold one call's utterances
only, decoded as one text and split by word times; windows of several calls go through the encoder and the
decoder as one batch, whose members never attend to each other. Isolated between calls by construction,
not between one call's utterances (that is ``ownership``'s job); a window per call costs encoder time.
``shared``: windows of every call decoded as one text and split by word times: not isolated, kept to
measure against (``benchmarks.leakage``, ``benchmarks.asr``). ``utterance``: one decoder sequence per
utterance over its own encoder frames (measured far less accurate, module docstring)."""

Ownership = Literal["speech", "time"]


def isolation_named(name: str) -> Isolation:
    """``name`` as an ``Isolation``; ``ValueError`` naming the choices when it is none."""
    for choice in get_args(Isolation):
        if name == choice:
            return cast(Isolation, choice)
    raise ValueError(f"isolation must be one of {', '.join(get_args(Isolation))}, got {name!r}")


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    window_s: float = 30.0
    fit_s: float = 3.0
    """Encode a batch of windows over only as much audio as its fullest one holds plus this much silence, in
    whole 5 s and at least ``min_fit_s`` (at most ``window_s``); 0 always encodes whole windows. The encoder
    and the decoder's cross-attention cost grow with the frames encoded, and a window of one call's one or two
    utterances is mostly padding. Measured (docs/measured.md): 3 s matches whole windows on WER at 1.4x their
    throughput offline."""
    min_fit_s: float = 10.0
    """Whisper was trained on 30 s windows: on a window fitted tightly around a short utterance its WER
    doubled (docs/NOTES.md of the shared data: 2 s of silence after each utterance), so none is shorter."""
    gap_s: float = 1.0
    """Silence between packed utterances: enough for the decoder to end a sentence. Measured on all 361 shared
    utterances with windows of one call, fitted (``fit_s``): 1 s against 0.5 s, WER en 0.047 / ru 0.149 against
    0.051 / 0.148, words lost or gained at utterance edges 37 / 52 against 39 / 57 (stock: 34 / 53), at the
    same speed (2 s: en 0.058). Before fitting, 1 s cost 8 % more processor time than 0.5 s.
    """
    batch_windows: int = 4
    """Windows per encoder/decoder call; more amortises decoding steps, costs latency."""
    beam_size: int = 1
    beam_by_language: tuple[tuple[str, int], ...] = (("ru", 2),)
    """Languages decoded with another beam. Measured on the 361 shared utterances (docs/measured.md): for
    Russian, where base Whisper is weakest, a beam of 2 wrote first and last words as stock's beam of 5 does
    (edge errors 47 against 51 greedy, WER 0.137 against 0.143) at about the same throughput (3.56 utterances/s
    against 3.54-3.78 greedy, both languages together); for English it did worse than greedy (edge errors 41
    against 33). Windows decoded as one text (``call``, ``shared``); ``utterance`` isolation keeps ``beam_size``."""
    timestamps: bool = False
    """Decode with timestamp tokens (measured: higher WER on packed windows, and slower)."""
    tokens_per_second: float = 12.0
    """Upper bound on text tokens per second of speech (Russian needs ~3x English)."""
    min_tokens: int = 24
    no_speech_prob: float = 0.6
    logprob: float = -1.0
    """Whisper's own rule: a window is silent when its no-speech probability is over ``no_speech_prob`` and its
    text's average log-probability under ``logprob``."""
    no_speech_alone: float = 0.75
    """A window whose no-speech probability is over this is silent however sure its text. On line noise alone
    Whisper writes fluent sentences ("I'm going to go to the next station.") with a no-speech probability of
    0.82-0.92 and log-probabilities near 0, which Whisper's rule lets through; short utterances of the shared
    set score at most 0.08."""
    max_word_s: float = 2.0
    """An aligned word longer than this covers speech the decoder skipped (seen on short windows: "What" over a
    whole 3 s utterance before it): the word goes where it ends, the pieces it covered get a second pass."""
    min_word_probability: float = 0.0
    """Utterances whose words average below this are withheld (0 disables)."""
    isolation: Isolation = "call"
    """``call`` (the default): windows hold one call's utterances each, batched through the encoder, so no
    decoder ever hears another call; ``shared``: windows of every call; ``utterance``: one decoder sequence
    per utterance (see the module)."""
    ownership: Ownership = "speech"
    """How a window's words are handed back to its utterances: ``speech``, to the one whose speech (not the
    silence at its edges) the word's aligned time covers most; ``time``, to the nearest to the word's middle."""
    margin_s: float = 0.2
    """``utterance`` isolation: silence either side of an utterance that its decoder also sees, so a
    word cut by the VAD keeps its edges; capped below half of ``gap_s``, so it never reaches a neighbour."""
    tail_s: float = 3.0
    """``utterance`` isolation: silence kept free at the end of every window and appended to each utterance's
    frames: Whisper expects silence after the last word, and without it ran on, repeating the utterance."""
    doubt_logprob: float = -0.6
    """``utterance`` isolation: an utterance decoded apart whose tokens average below this log-probability,
    that ran on past its audio, or that repeated itself, is decoded again alone in a window of its own."""
    speaker_language_s: float = 4.0
    """With no language given, an utterance at least this long sets its speaker's (its call's leg's) language
    to the one detected on it, and a shorter one of that speaker is decoded in it. Whisper's language
    detection on a second of speech is a guess: the real call lca-40 ends with the agent's "Bye-bye"
    written as "拜拜" after four minutes of her English. 0: every utterance is detected on its own."""
    speakers_kept: int = 10_000
    """Speakers whose language is remembered, the least recently heard forgotten first."""


@dataclass(slots=True)
class _Decoded:
    words: list[tuple[Piece, Word]]
    language: str
    silent: bool
    missed: tuple[Piece, ...] = ()
    """Pieces after the last one that got words: the decoder stopped early (an end-of-text at a
    pause, or the token budget) rather than judging them silent, which it does in place."""


class WhisperTranscriber:
    """Blocking. Safe to call from as many threads at once as the model has workers (CTranslate2 replicas,
    ``load_model(workers=...)``): calls share nothing but the model and the caches below."""

    def __init__(
        self, model: WhisperModel, *, language: str | None = None, settings: DecodeSettings | None = None
    ) -> None:
        self.model = model
        self.language = language
        self.settings = settings or DecodeSettings()
        if self.settings.isolation == "utterance" and int(self.settings.tail_s * RATE) < _HOP:
            raise ValueError("utterance isolation needs a silent tail of at least one encoder frame (tail_s)")
        self._multilingual = bool(model.model.is_multilingual)
        self._tokenizers: dict[str, Tokenizer] = {}
        self._suppress: list[int] | None = None
        self._cache_lock = threading.Lock()
        self._spoken: OrderedDict[tuple[str, str], str] = OrderedDict()
        """(call id, leg) -> the language last detected on a long utterance of that speaker."""

    def transcribe_batch(self, utterances: Sequence[Utterance]) -> list[Transcript]:
        audio = [to_whisper_rate(u.audio, u.sample_rate) for u in utterances]
        out: list[Transcript | None] = [None] * len(utterances)
        groups: dict[str, list[Span]] = {}
        keys: dict[int, str] = {}
        capacity = int(self._packed_s() * RATE)
        for i, (utt, samples) in enumerate(zip(utterances, audio, strict=True)):
            language = self._language_for(utt) or self._speaker_language(utt)
            if guards.rms_dbfs(samples) < guards.SILENCE_DBFS or samples.size < RATE // 10:
                out[i] = Transcript("", language or "", rejected="silence")
                continue
            # Unknown language: pack only with the same speaker, whose language is the same.
            key = language or f"?{utt.call_id}\x00{utt.leg}"
            if self.settings.isolation == "call" and language:
                key = f"{language}\x00{utt.call_id}"
            keys[i] = key
            cuts = split_at_pauses(samples, capacity)
            groups.setdefault(key, []).extend((i, start, end) for start, end in cuts)
        decoded: dict[int, list[_Decoded]] = {}
        missed = self._run(self._plan(groups), audio, decoded)
        if missed:
            # Second and last chance for utterances the decoder skipped or, decoded apart, doubted: with new
            # neighbours, or (``utterance`` isolation) alone in a window, where nothing else can be heard.
            retry: dict[str, list[Span]] = {}
            for language, piece in missed:
                # The language now known (detected); everything else of the key kept: with ``call`` isolation
                # a retried piece meets only its own call's, as in the first pass.
                key = keys[piece.index]
                if self.settings.isolation == "call":
                    key = f"{language}\x00{utterances[piece.index].call_id}"
                elif key.startswith("?"):
                    key = language
                retry.setdefault(key, []).append((piece.index, piece.source_start, piece.source_end))
            self._run(self._plan(retry, alone=self.settings.isolation == "utterance"), audio, decoded)
        for i, utt in enumerate(utterances):
            if out[i] is None:
                out[i] = self._assemble(utt, audio[i].size, decoded.get(i, []), i)
        self._learn_speakers(utterances, out)
        return [t for t in out if t is not None]

    def _speaker_language(self, utt: Utterance) -> str | None:
        """The language of a short utterance's speaker, when a long one of theirs showed it."""
        if utt.end_s - utt.start_s >= self.settings.speaker_language_s:
            return None
        with self._cache_lock:
            language = self._spoken.get((utt.call_id, utt.leg))
            if language is not None:
                self._spoken.move_to_end((utt.call_id, utt.leg))
            return language

    def _learn_speakers(self, utterances: Sequence[Utterance], out: Sequence[Transcript | None]) -> None:
        if self.settings.speaker_language_s <= 0 or not self._multilingual:
            return
        with self._cache_lock:
            for utt, transcript in zip(utterances, out, strict=True):
                if utt.end_s - utt.start_s < self.settings.speaker_language_s or self._language_for(utt) is not None:
                    continue
                if transcript is None or not transcript.text or not transcript.language:
                    continue
                self._spoken[(utt.call_id, utt.leg)] = transcript.language
                self._spoken.move_to_end((utt.call_id, utt.leg))
            while len(self._spoken) > self.settings.speakers_kept:
                self._spoken.popitem(last=False)

    def _plan(self, groups: dict[str, list[Span]], *, alone: bool = False) -> list[tuple[str | None, Window]]:
        windows: list[tuple[str | None, Window]] = []
        for key, spans in groups.items():
            language = None if key.startswith("?") else key.partition("\x00")[0]
            if alone:
                windows.extend((language, Window((Piece(i, start, end, 0),))) for i, start, end in spans)
                continue
            plan = plan_windows(spans, window_s=self._packed_s(), gap_s=self.settings.gap_s)
            windows.extend((language, w) for w in plan)
        return windows

    def _run(
        self,
        windows: Sequence[tuple[str | None, Window]],
        audio: Sequence[npt.NDArray[np.float32]],
        decoded: dict[int, list[_Decoded]],
    ) -> list[tuple[str, Piece]]:
        """Decode ``windows`` in batches into ``decoded``; return the pieces the decoder skipped."""
        missed: list[tuple[str, Piece]] = []
        step = max(1, self.settings.batch_windows)
        if self.settings.fit_s > 0:
            # A batch is encoded over its fullest window: batch windows of like fullness together.
            windows = sorted(windows, key=lambda lw: lw[1].content_end)
        for first in range(0, len(windows), step):
            batch = windows[first : first + step]
            for (_, window), result in zip(batch, self._decode(batch, audio), strict=True):
                for index in {p.index for p in window.pieces}:
                    decoded.setdefault(index, []).append(result)
                missed.extend((result.language, piece) for piece in result.missed)
        return missed

    def _language_for(self, utt: Utterance) -> str | None:
        if not self._multilingual:
            return "en"
        language = utt.language or self.language
        return None if language in (None, "", "auto") else language

    def _tokenizer(self, language: str) -> Tokenizer:
        with self._cache_lock:
            return self._tokenizer_locked(language)

    def _tokenizer_locked(self, language: str) -> Tokenizer:
        if language not in self._tokenizers:
            try:
                self._tokenizers[language] = Tokenizer(
                    self.model.hf_tokenizer, self._multilingual, task="transcribe", language=language
                )
            except ValueError:
                raise ModelError(f"language {language!r} is not supported by this model") from None
        return self._tokenizers[language]

    def _suppressed(self, tokenizer: Tokenizer) -> list[int]:
        with self._cache_lock:
            return self._suppressed_locked(tokenizer)

    def _suppressed_locked(self, tokenizer: Tokenizer) -> list[int]:
        if self._suppress is None:
            # Same as transcribe(suppress_tokens=[-1]): no music notes, speaker tags, special tokens.
            special = [tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev]
            special += [tokenizer.sot_lm, tokenizer.no_speech]
            self._suppress = sorted({*tokenizer.non_speech_tokens, *special})
        return self._suppress

    def _encoded_samples(self, windows: Sequence[Window]) -> int:
        """How much audio (16 kHz samples) a batch of ``windows`` is encoded over (``DecodeSettings.fit_s``)."""
        whole = int(self.settings.window_s * RATE)
        if self.settings.fit_s <= 0 or self.settings.isolation == "utterance":
            return whole  # ``utterance`` decoding reads the window's silent end
        step = 5 * RATE
        need = max(w.content_end for w in windows) + int(self.settings.fit_s * RATE)
        return min(whole, max(int(self.settings.min_fit_s * RATE), -(-need // step) * step))

    def _samples(self, window: Window, audio: Sequence[npt.NDArray[np.float32]], size: int) -> npt.NDArray[np.float32]:
        samples = np.zeros(size, dtype=np.float32)
        for p in window.pieces:
            samples[p.offset : p.offset + p.length] = audio[p.index][p.source_start : p.source_end]
        return samples

    def _features(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        features = self.model.feature_extractor(samples)
        frames = min(_FRAMES, samples.size // 160)
        return np.ascontiguousarray(features[:, :frames], dtype=np.float32)

    def _decode(
        self, batch: Sequence[tuple[str | None, Window]], audio: Sequence[npt.NDArray[np.float32]]
    ) -> list[_Decoded]:
        size = self._encoded_samples([w for _, w in batch])
        samples = [self._samples(w, audio, size) for _, w in batch]
        features = np.stack([self._features(s) for s in samples])
        speech = [speech_frames(s, w) if self.settings.ownership == "speech" else None
                  for s, (_, w) in zip(samples, batch, strict=True)]
        encoded = self.model.model.encode(ctranslate2.StorageView.from_array(features))
        languages = [lang for lang, _ in batch]
        if any(lang is None for lang in languages):
            detected = self.model.model.detect_language(encoded)
            languages = [lang or str(found[0][0]).strip("<|>") for lang, found in zip(languages, detected, strict=True)]
        results: list[_Decoded | None] = [None] * len(batch)
        by_language: dict[str, list[int]] = {}
        for i, lang in enumerate(languages):
            by_language.setdefault(str(lang), []).append(i)
        for language, members in by_language.items():
            sub = encoded if len(members) == len(batch) else _select(encoded, members)
            windows = [batch[i][1] for i in members]
            found = self._generate(sub, windows, language, [speech[i] for i in members])
            for i, decoded in zip(members, found, strict=True):
                results[i] = decoded
        return [r for r in results if r is not None]

    def _generate(
        self, encoded: Any, windows: Sequence[Window], language: str,
        speech: Sequence[npt.NDArray[np.bool_] | None] | None = None,
    ) -> list[_Decoded]:
        """``speech``: per window, which of its frames hold speech (``packing.speech_frames``), for ownership."""
        heard = list(speech) if speech is not None else [None] * len(windows)
        if self.settings.isolation == "utterance" and any(len(w.pieces) > 1 for w in windows):
            # A lone piece is decoded as one text like any window: it has nothing to be kept apart from.
            shared = [k for k, w in enumerate(windows) if len(w.pieces) == 1]
            apart = [k for k, w in enumerate(windows) if len(w.pieces) > 1]
            results: dict[int, _Decoded] = {}
            if shared:
                sub = _select(encoded, shared)
                found = self._generate_shared(sub, [windows[k] for k in shared], language, [heard[k] for k in shared])
                results.update(zip(shared, found, strict=True))
            sub = encoded if not shared else _select(encoded, apart)
            results.update(zip(apart, self._generate_apart(sub, [windows[k] for k in apart], language), strict=True))
            return [results[k] for k in range(len(windows))]
        return self._generate_shared(encoded, windows, language, heard)

    def _beam(self, language: str) -> int:
        return dict(self.settings.beam_by_language).get(language, self.settings.beam_size)

    def _generate_shared(
        self, encoded: Any, windows: Sequence[Window], language: str,
        speech: Sequence[npt.NDArray[np.bool_] | None] | None = None,
    ) -> list[_Decoded]:
        """One text per window, each word given to the piece whose speech its aligned time covers most
        (``packing.speaker``; by its middle without ``speech``)."""
        heard = list(speech) if speech is not None else [None] * len(windows)
        tokenizer = self._tokenizer(language)
        prompt = list(tokenizer.sot_sequence)
        if not self.settings.timestamps:
            prompt.append(tokenizer.no_timestamps)
        speech_s = max(w.speech_samples for w in windows) / RATE
        budget = max(self.settings.min_tokens, math.ceil(speech_s * self.settings.tokens_per_second))
        max_length = min(self.model.max_length, len(prompt) + budget)
        generated = self.model.model.generate(
            encoded,
            [list(prompt) for _ in windows],
            beam_size=self._beam(language),
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed(tokenizer),
            max_initial_timestamp_index=50,
        )
        tokens: list[list[int]] = []
        silent: list[bool] = []
        for result in generated:
            ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
            avg_logprob = float(result.scores[0]) / (len(result.sequences_ids[0]) + 1)
            quiet = self._silent(float(result.no_speech_prob), avg_logprob)
            silent.append(quiet or not ids)
            tokens.append([] if quiet else ids)
        encoded_frames = 2 * int(encoded.shape[1])
        frames = [min(encoded_frames, math.ceil((w.content_end + RATE // 2) / 160)) for w in windows]
        alignments = self._align(tokenizer, tokens, encoded, frames)
        out = []
        for window, alignment, quiet, mask in zip(windows, alignments, silent, heard, strict=True):
            words = []
            skipped: set[int] = set()
            for item in alignment:
                text = str(item["word"])
                if not text:
                    continue
                start, end = float(item["start"]), float(item["end"])
                if end - start > self.settings.max_word_s:
                    # The decoder skipped speech and the aligner stretched the next word back over it: the
                    # word is where it ends; what it covered before that was never decoded.
                    piece = speaker(window, end - self.settings.max_word_s / 2, end, mask)
                    skipped.update(id(p) for p in window.pieces
                                   if p is not piece and p.offset / RATE < end and p.offset + p.length > start * RATE)
                    start = max(start, piece.offset / RATE)
                else:
                    piece = speaker(window, start, end, mask)
                shift = (piece.source_start - piece.offset) / RATE
                words.append((piece, Word(text, start + shift, end + shift, float(item["probability"]))))
            owners = {id(piece) for piece, _ in words}
            reached = max((k for k, p in enumerate(window.pieces) if id(p) in owners), default=-1)
            missed = () if quiet else tuple(
                p for k, p in enumerate(window.pieces) if k > reached or (id(p) in skipped and id(p) not in owners))
            out.append(_Decoded(words, language, quiet, missed))
        return out

    def _generate_apart(self, encoded: Any, windows: Sequence[Window], language: str) -> list[_Decoded]:
        """One decoder sequence per piece, over that piece's encoder frames only (module docstring)."""
        tokenizer = self._tokenizer(language)
        prompt = list(tokenizer.sot_sequence)
        frames = np.asarray(encoded)
        # Below half the gap: the frames a piece's decoder sees never include a neighbour's speech.
        margin = int(min(self.settings.margin_s, 0.45 * self.settings.gap_s) * RATE) // _HOP
        spans: list[_Span] = []
        for w, window in enumerate(windows):
            for piece in window.pieces:
                first = max(0, piece.offset // _HOP - margin)
                end = min(frames.shape[1], -(-(piece.offset + piece.length) // _HOP) + margin)
                spans.append(_Span(w, piece, first, end))
        results: dict[int, tuple[list[tuple[Piece, Word]], bool, bool]] = {}
        for group in _buckets(spans):
            for k, result in zip(group, self._decode_spans(frames, [spans[k] for k in group], tokenizer, prompt),
                                 strict=True):
                results[k] = result
        out = []
        for w in range(len(windows)):
            mine = [k for k, span in enumerate(spans) if span.window == w]
            words = [pair for k in mine if not results[k][2] for pair in results[k][0]]
            doubted = tuple(spans[k].piece for k in mine if results[k][2])
            out.append(_Decoded(words, language, all(results[k][1] for k in mine), doubted))
        return out

    def _decode_spans(
        self, frames: npt.NDArray[np.float32], spans: Sequence[_Span], tokenizer: Tokenizer, prompt: list[int]
    ) -> list[tuple[list[tuple[Piece, Word]], bool, bool]]:
        # The tail is the window's own silence after everything packed into it (``_packed_s``): silence as
        # the encoder saw it in this very window, which is what Whisper expects after the last word.
        tail = int(self.settings.tail_s * RATE) // _HOP
        width = max(span.end - span.first for span in spans) + tail
        memory = np.empty((len(spans), width, frames.shape[2]), dtype=np.float32)
        for k, span in enumerate(spans):
            n = span.end - span.first
            memory[k, :n] = frames[span.window, span.first : span.end]
            # Shorter spans of the call are padded with more of the same silence, never with what precedes it.
            reserved = frames[span.window, frames.shape[1] - tail :]
            memory[k, n:] = reserved[np.arange(width - n) % tail]
        encoded = ctranslate2.StorageView.from_array(memory)
        speech_s = max(span.piece.length for span in spans) / RATE
        budget = max(self.settings.min_tokens, math.ceil(speech_s * self.settings.tokens_per_second))
        generated = self.model.model.generate(
            encoded,
            [[*prompt, tokenizer.timestamp_begin + span.first] for span in spans],
            beam_size=self.settings.beam_size,
            max_length=min(self.model.max_length, len(prompt) + 1 + budget),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed(tokenizer),
            max_initial_timestamp_index=1500,
        )
        tokens: list[list[int]] = []
        quiet: list[bool] = []
        doubts: list[bool] = []
        for span, result in zip(spans, generated, strict=True):
            speech_end = -(-(span.piece.offset + span.piece.length) // _HOP)
            ids, went_on = _within(result.sequences_ids[0], tokenizer, speech_end)
            avg_logprob = float(result.scores[0]) / (len(result.sequences_ids[0]) + 1)
            doubts.append(went_on or avg_logprob < self.settings.doubt_logprob)
            silent = self._silent(float(result.no_speech_prob), avg_logprob)
            quiet.append(silent or not ids)
            tokens.append([] if silent else ids)
        alignments = self._align(tokenizer, tokens, encoded, [2 * (span.end - span.first) for span in spans])
        out = []
        for span, alignment, silent, doubt in zip(spans, alignments, quiet, doubts, strict=True):
            # Word times in the piece's own audio: from the frame its memory starts at, within the piece.
            shift = (span.first * _HOP - span.piece.offset) / RATE
            low, high = span.piece.source_start / RATE, span.piece.source_end / RATE
            words = []
            for item in alignment:
                text = str(item["word"])
                if not text:
                    continue
                start = min(high, max(low, low + float(item["start"]) + shift))
                end = min(high, max(start, low + float(item["end"]) + shift))
                words.append((span.piece, Word(text, start, end, float(item["probability"]))))
            if not silent and guards.collapse_repeats([w.word for _, w in words]) != list(range(len(words))):
                doubt = True
            out.append((words, silent, doubt and not silent))
        return out

    def _silent(self, no_speech: float, avg_logprob: float) -> bool:
        s = self.settings
        return no_speech > s.no_speech_alone or (no_speech > s.no_speech_prob and avg_logprob < s.logprob)

    def _packed_s(self) -> float:
        """How much of a window utterances may fill: with ``utterance`` isolation the end stays silent."""
        reserve = self.settings.tail_s if self.settings.isolation == "utterance" else 0.0
        return self.settings.window_s - reserve

    def _align(
        self, tokenizer: Tokenizer, tokens: list[list[int]], encoded: Any, frames: list[int]
    ) -> list[list[dict[str, Any]]]:
        nonempty = [i for i, t in enumerate(tokens) if t]
        aligned: list[list[dict[str, Any]]] = [[] for _ in tokens]
        if not nonempty:
            return aligned
        sub = encoded if len(nonempty) == len(tokens) else _select(encoded, nonempty)
        found = self.model.find_alignment(tokenizer, [tokens[i] for i in nonempty], sub, [frames[i] for i in nonempty])
        for i, alignment in zip(nonempty, found, strict=True):
            merge_punctuations(alignment, _PREPEND, _APPEND)
            aligned[i] = alignment
        return aligned

    def _assemble(self, utt: Utterance, samples: int, parts: list[_Decoded], index: int) -> Transcript:
        language = parts[0].language if parts else (self._language_for(utt) or "")
        by_piece: dict[int, list[Word]] = {}
        for part in parts:
            for piece, word in part.words:
                if piece.index == index:
                    by_piece.setdefault(piece.source_start, []).append(word)
        if not by_piece:
            reason = "no_speech" if all(p.silent for p in parts) else "empty"
            return Transcript("", language, rejected=reason)
        # Loops are judged per piece (at most one window of audio), the span Whisper's own
        # compression threshold was set for; words keep decoding order, which is more reliable
        # than aligned times at a piece's edges.
        kept: list[Word] = []
        for start in sorted(by_piece):
            words = by_piece[start]
            words = [words[i] for i in guards.collapse_repeats([w.word for w in words])]
            if guards.compression_ratio("".join(w.word for w in words)) <= guards.COMPRESSION_RATIO_MAX:
                kept.extend(words)
        if not kept:
            return Transcript("", language, rejected="repetition")
        text = "".join(w.word for w in kept).strip()
        duration = samples / RATE
        mean_prob = sum(w.probability for w in kept) / len(kept)
        extra = {"mean_word_probability": mean_prob}
        if guards.too_many_words(text, duration):
            return Transcript("", language, rejected="too_many_words", extra=extra)
        if mean_prob < self.settings.min_word_probability:
            return Transcript("", language, rejected="low_confidence", extra=extra)
        offset = utt.start_s

        def inside(t: float) -> float:
            # The aligner may stretch a piece's first word back over the silence packed before it (by up to a
            # second): a word lies within its utterance's audio.
            return round(offset + min(max(t, 0.0), duration), 3)

        timed = tuple(Word(w.word.strip(), inside(w.start), inside(w.end), round(w.probability, 4)) for w in kept)
        return Transcript(text, language, timed, extra=extra)


@dataclass(frozen=True, slots=True)
class _Span:
    """The encoder frames of one window that one piece's decoder sees."""

    window: int
    piece: Piece
    first: int
    end: int


def _within(sequence: Sequence[int], tokenizer: Tokenizer, end: int) -> tuple[list[int], bool]:
    """The text tokens of the segments that start before ``end`` (encoder frames), and whether any text came
    after: past the piece's audio there is only silence, where Whisper tends to say the piece again."""
    kept = []
    went_on = False
    last = 0
    for token in sequence:
        if token >= tokenizer.timestamp_begin:
            last = token - tokenizer.timestamp_begin
        elif token < tokenizer.eot:
            if last < end:
                kept.append(token)
            else:
                went_on = True
    return kept, went_on


def _buckets(spans: Sequence[_Span], *, waste: float = 0.25) -> list[list[int]]:
    """Indices of ``spans`` grouped for one decoder call each: every memory in a call is padded to the longest,
    and the decoder projects every padded frame, so lengths are grouped (shortest first) while the padding
    stays under ``waste`` of the frames."""
    order = sorted(range(len(spans)), key=lambda k: spans[k].end - spans[k].first)
    groups: list[list[int]] = []
    real = 0
    for k in order:
        n = spans[k].end - spans[k].first
        if groups and n * (len(groups[-1]) + 1) <= (1 + waste) * (real + n):
            groups[-1].append(k)
            real += n
        else:
            groups.append([k])
            real = n
    return groups


def _select(encoded: Any, members: Sequence[int]) -> Any:
    array = np.asarray(encoded)[list(members)]
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


def load_model(
    model: str = "base", *, threads: int = 2, compute_type: str = "", device: str = "cpu", workers: int = 1
) -> WhisperModel:
    """``device`` cpu, cuda or auto; ``compute_type`` empty: int8 on the CPU, float16 on a GPU, else CTranslate2's
    choice. ``workers`` replicas of ``threads`` threads each can run that many calls at once. On a GPU
    ``threads`` only serve the feature extraction."""
    path = resolve_model(model)
    compute = compute_type or {"cpu": "int8", "cuda": "float16"}.get(device, "auto")
    try:
        return WhisperModel(str(path), device=device, compute_type=compute, cpu_threads=threads, num_workers=workers)
    except (RuntimeError, ValueError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load Whisper model from {path} on {device} ({compute}): {first}") from None


def load_transcriber(
    model: str = "base",
    language: str | None = None,
    threads: int = 2,
    compute_type: str = "int8",
    settings: DecodeSettings | None = None,
) -> WhisperTranscriber:
    whisper = load_model(model, threads=threads, compute_type=compute_type)
    return WhisperTranscriber(whisper, language=language, settings=settings)
