"""Speech and text models for callwatch; imports nothing from ``service``.

Public API (blocking calls; run transcription in a worker thread, e.g. via
``service.live.transcription.TranscriptionScheduler``)::

    from models.transcriber import Utterance, Transcript, Word, Transcriber
    Utterance(call_id, leg, start_s, end_s, audio, sample_rate=8000, language=None)
        # audio: mono int16 PCM or float32 in [-1, 1] at ``sample_rate``; resampled to 16 kHz inside
    Transcript(text, language, words: tuple[Word, ...], rejected: str | None, extra)
    Word(word, start, end, probability)            # call audio time, seconds

    from models.whisper import load_transcriber, WhisperTranscriber, DecodeSettings
    load_transcriber(model="base", language=None, threads=2, compute_type="int8") -> WhisperTranscriber
    WhisperTranscriber.transcribe_batch(list[Utterance]) -> list[Transcript]   # same order

    from models.resolve import resolve_model, ModelError   # "base" | "tiny.en" | folder | cached hub id
    from models.cues import find_cues, is_backchannel, Cue
    find_cues(text, leg, language=None) -> list[Cue(category, text, start)]
    is_backchannel(text, language=None) -> bool             # empty text -> True
    from models.rate import SpeakingRateTracker, words_per_minute, RateSettings, RateReading
    from models.redact import redact, redact_transcript     # -> "[card]", "[cvv]", "[email]", ...
"""
