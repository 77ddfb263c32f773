"""Remove payment and personal data from transcript text before it is stored, shown or logged.

Numbers are found as runs of digits (with the spaces, dashes, dots and brackets people and Whisper
put between groups) and of spoken number words ("four five three two ...", "fifty four", "четыре пять ..."),
then judged by length, grouping, Luhn and the cue words near them (``models/redact_rules.py``):

- ``[card]``: 13-19 digits passing the Luhn check, or 6 or more near "card", "карта", ... (Luhn is evidence
  there, not a gate: a recogniser drops and repeats digits);
- ``[expiry]``, ``[cvv]``, ``[pin]``: short numbers after their cue words, or right after a card number;
- ``[ssn]``: a 3-2-4 grouped number, or digits after "social security";
- ``[id]``, ``[account]``: digits after "passport", "паспорт", "ИНН", "account number", ...;
- ``[phone]``: 10-11 digits, ``+`` and 10-15 digits, or a dashed local number;
- ``[number]``: any other run of 6 or more digits that no word such as "order" or "tracking" explains;
- ``[email]``: e-mail addresses.

Amounts, times, dates and durations, recognised by their form ("$45.99", "3:30", "12 minutes", "March 3rd"),
stay in the clear, and so do numbers after "order", "tracking", "заказ". This module judges one text alone;
``models/redact_call.py`` does the same across the utterances of a call.
"""

from __future__ import annotations

from dataclasses import replace

from models.redact_call import CallRedactor
from models.redact_rules import luhn_ok
from models.transcriber import Transcript, Word

__all__ = ["luhn_ok", "redact", "redact_transcript"]


def redact(text: str) -> str:
    """``text`` with every sensitive number or address replaced by its tag, e.g. ``[card]``."""
    out = CallRedactor().add("", 0.0, 1.0, text).utterance.text
    return out if out != text.strip() else text


def redact_transcript(transcript: Transcript) -> Transcript:
    """Redact the text and the timed words alike: the words of a redacted span collapse into one
    word carrying the tag, timed from the first to the last, so word lists never leak what the
    text hides."""
    words = tuple((w.word, w.start, w.end) for w in transcript.words)
    end = max((w.end for w in transcript.words), default=1.0)
    r = CallRedactor().add("", 0.0, end, transcript.text, words).utterance
    if r.text == transcript.text.strip():
        return transcript
    if not transcript.words or not r.words:
        return replace(transcript, text=r.text, words=())
    kept = []
    source = iter(transcript.words)
    for w, s, e in r.words:
        if w.startswith("[") and w.endswith("]"):
            probs = []
            for orig in source:
                probs.append(orig.probability)
                if orig.end >= e:
                    break
            kept.append(Word(w, s, e, min(probs, default=1.0)))
        else:
            orig = next(source)
            kept.append(orig)
    return replace(transcript, text=r.text, words=tuple(kept))
