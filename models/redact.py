"""Remove payment and personal data from transcript text before it is stored, shown or logged.

Numbers are found as runs of digits (with the spaces, dashes, dots and brackets people and Whisper
put between groups) and as runs of spoken digit words ("four five three two ...", "четыре пять ..."),
then classified by length, shape and the words just before them:

- ``[card]``: 13-19 digits passing the Luhn check (an order number that fails it is left alone);
- ``[cvv]``: 3-4 digits shortly after "CVV", "security code", "код безопасности", ...;
- ``[ssn]``: US social security number (``123-45-6789``, or 9 digits after "social security");
- ``[id]``: СНИЛС, or 4-12 digits after "passport", "паспорт", "ИНН", "ID number", ...;
- ``[phone]``: 10-11 digits, or ``+`` and 10-15 digits, or a dashed local number;
- ``[email]``: e-mail addresses.
"""

from __future__ import annotations

import re
from dataclasses import replace

from models.transcriber import Transcript, Word

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.\w{2,}")
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\(?\d(?:[ \t\-.()/]{0,3}\d)*\)?")
_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ноль": "0",
    "нуль": "0",
    "один": "1",
    "одна": "1",
    "два": "2",
    "две": "2",
    "три": "3",
    "четыре": "4",
    "пять": "5",
    "шесть": "6",
    "семь": "7",
    "восемь": "8",
    "девять": "9",
}
_SPOKEN_TOKEN = r"(?:\d+|" + "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True)) + r")"
_SPOKEN_RUN = re.compile(rf"(?<!\w){_SPOKEN_TOKEN}(?:[\s,.\-]+{_SPOKEN_TOKEN}){{2,}}(?!\w)", re.IGNORECASE)
_CVV_CONTEXT = re.compile(
    r"(?:cvv2?|cvc2?|cv2|security (?:code|number)|verification (?:code|number)|three digits?|"
    r"код(?:а|ом)? безопасности|cvv-код\w*|cvc-код\w*|на обороте|три цифры)\W*(?:\w+\W+){0,4}$",
    re.IGNORECASE,
)
_SSN_CONTEXT = re.compile(r"(?:social security|ssn|social)\W*(?:\w+\W+){0,4}$", re.IGNORECASE)
_ID_CONTEXT = re.compile(
    r"(?:passport|national id|id number|driver'?s licen[cs]e|tax id|паспорт\w*|инн|снилс|серия|"
    r"номер паспорта)\W*(?:\w+\W+){0,4}$",
    re.IGNORECASE,
)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_SNILS_SHAPE = re.compile(r"\d{3}-\d{3}-\d{3}[ -]\d{2}")
_LOCAL_PHONE_SHAPE = re.compile(r"\(?\d{3}\)?[ .-]\d{3}[ .-]\d{2}-?\d{2}|\d{3}-\d{2}-\d{2}|\d{3}-\d{4}")
_CONTEXT_CHARS = 48


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def classify(digits: str, raw: str, before: str) -> str | None:
    """The tag for a number, or None to keep it. ``before`` is the text just ahead of it."""
    n = len(digits)
    if 13 <= n <= 19 and luhn_ok(digits):
        return "card"
    if n in (3, 4) and _CVV_CONTEXT.search(before):
        return "cvv"
    if _SSN_SHAPE.fullmatch(raw) or (n == 9 and _SSN_CONTEXT.search(before)):
        return "ssn"
    if _SNILS_SHAPE.fullmatch(raw) or (4 <= n <= 12 and _ID_CONTEXT.search(before)):
        return "id"
    if raw.startswith("+") and 10 <= n <= 15:
        return "phone"
    if n in (10, 11) or _LOCAL_PHONE_SHAPE.fullmatch(raw):
        return "phone"
    return None


def _spans(text: str) -> list[tuple[int, int, str]]:
    spans = [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    for m in _SPOKEN_RUN.finditer(text):
        tokens = re.findall(_SPOKEN_TOKEN, m.group(), re.IGNORECASE)
        if all(t.isdigit() for t in tokens):
            continue  # plain digits: handled below, where their punctuation shape is known
        digits = "".join(t if t.isdigit() else _DIGIT_WORDS[t.lower()] for t in tokens)
        before = text[max(0, m.start() - _CONTEXT_CHARS) : m.start()]
        tag = classify(digits, digits, before)
        if tag and free(m.start(), m.end()):
            spans.append((m.start(), m.end(), tag))
    for m in _DIGIT_RUN.finditer(text):
        raw = m.group().rstrip(")") if m.group().count("(") < m.group().count(")") else m.group()
        digits = re.sub(r"\D", "", raw)
        before = text[max(0, m.start() - _CONTEXT_CHARS) : m.start()]
        tag = classify(digits, raw, before)
        if tag and free(m.start(), m.start() + len(raw)):
            spans.append((m.start(), m.start() + len(raw), tag))
    return sorted(spans)


def redact(text: str) -> str:
    """``text`` with every sensitive number or address replaced by its tag, e.g. ``[card]``."""
    out: list[str] = []
    cursor = 0
    for start, end, tag in _spans(text):
        out.append(text[cursor:start])
        out.append(f"[{tag}]")
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def redact_transcript(transcript: Transcript) -> Transcript:
    """Redact the text and the timed words alike: the words of a redacted span collapse into one
    word carrying the tag, timed from the first to the last, so word lists never leak what the
    text hides."""
    text = redact(transcript.text)
    if not transcript.words:
        return replace(transcript, text=text)
    joined = ""
    starts = []
    for w in transcript.words:
        starts.append(len(joined))
        joined += w.word if not joined else " " + w.word
    spans = _spans(joined)
    words: list[Word] = []
    current: int | None = None
    for w, start in zip(transcript.words, starts, strict=True):
        end = start + len(w.word)
        hit = next((i for i, (s, e, _) in enumerate(spans) if start < e and end > s), None)
        if hit is None:
            words.append(w)
        elif hit == current:
            words[-1] = replace(words[-1], end=w.end, probability=min(words[-1].probability, w.probability))
        else:
            words.append(replace(w, word=f"[{spans[hit][2]}]"))
        current = hit
    return replace(transcript, text=text, words=tuple(words))
