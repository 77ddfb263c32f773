"""How well redaction holds on numbers as callers say them and recognisers write them.

    python -m benchmarks.redaction text [--calls 2000 --seed 1]
    python -m benchmarks.redaction speech [--paces ivr,careful,grouped --langs en,ru]

**text**: calls made from templates, in English and Russian: card, CVV, expiry, SSN/СНИЛС, phone and passport
numbers written as a recogniser does (digits, groups, digit words, "double five", Russian numerals), with digits
dropped, repeated and merged, split over 1-16 utterances with pauses, after a cue word that is right, misheard,
wrong, on the other leg or missing; with amounts, dates, times, durations and order numbers around them. Each
call goes through ``CallMonitor.add_transcript`` (the per-call core of ``analyze`` and the live service).

**speech**: numbers read from the recorded digit prompts of Debian's ``asterisk-core-sounds-{en,ru}-wav``
(read in place from /usr/share/asterisk/sounds) at several paces, streamed as live calls into a real
``callwatch serve`` app with the bundled Whisper model, then read back from the REST API and the stored WAV;
the stored WAV is transcribed again, with redaction off, to count the digits still audible.

Counted: a sensitive number "survives" when 6 or more of its digits are left in the clear anywhere after the
call; every digit left is counted too, and the most digits that were on screen before a retraction. A benign
number is "redacted by mistake" when its text is not shown as said.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.redact_call import RUN_GAP_S
from models.redact_rules import luhn_ok

DIGIT_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "ru": ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"],
}
TEENS = {"en": ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen"],
         "ru": ["десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать", "шестнадцать",
                "семнадцать", "восемнадцать", "девятнадцать"]}
TENS = {"en": ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"],
        "ru": ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят", "восемьдесят",
               "девяносто"]}
CUES = {
    "card": {"en": ["My card number is", "The card is", "Credit card number", "It's my Visa,"],
             "ru": ["Номер карты", "Моя карта", "Номер моей карты"]},
    "cvv": {"en": ["The CVV is", "Security code is", "The three digits on the back are"],
            "ru": ["Код безопасности", "CVV код", "Три цифры на обороте"]},
    "expiry": {"en": ["It expires", "Expiration date is", "Expiry"], "ru": ["Срок действия", "Действует до"]},
    "ssn": {"en": ["My social security number is", "Social is", "SSN"], "ru": ["Мой СНИЛС", "СНИЛС"]},
    "phone": {"en": ["My phone number is", "Call me at", "My cell is"], "ru": ["Мой телефон", "Номер телефона"]},
    "passport": {"en": ["My passport number is", "Passport"], "ru": ["Паспорт серия и номер", "Мой паспорт"]},
}
AGENT_ASKS = {
    "card": {"en": "Could I have the long number on the front?", "ru": "Продиктуйте номер карты, пожалуйста."},
    "cvv": {"en": "And the three digits on the back?", "ru": "И три цифры на обороте."},
    "expiry": {"en": "When does it expire?", "ru": "Какой срок действия?"},
    "ssn": {"en": "Can you verify your social?", "ru": "Назовите СНИЛС."},
    "phone": {"en": "What's the best number to reach you?", "ru": "Какой у вас телефон?"},
    "passport": {"en": "I need your passport number.", "ru": "Мне нужны данные паспорта."},
}
WRONG_CUES = {"en": ["My total is", "Okay so it's", "Right, the number is", "Let me see,"],
              "ru": ["Итак", "Значит так,", "Сейчас,", "Вот"]}


def luhn_complete(partial: str) -> str:
    return next(partial + str(d) for d in range(10) if luhn_ok(partial + str(d)))


def sensitive_number(kind: str, lang: str, rng: random.Random) -> tuple[str, tuple[int, ...]]:
    """Digits and their natural grouping."""
    def r(n: int) -> str:
        return "".join(str(rng.randrange(10)) for _ in range(n))

    if kind == "card":
        prefix = rng.choice(["4", "51", "52", "55", "37", "2200", "2202"])
        length = 15 if prefix == "37" else 16
        d = luhn_complete(prefix + r(length - len(prefix) - 1))
        return d, (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    if kind == "cvv":
        return r(3), (3,)
    if kind == "expiry":
        return f"{rng.randint(1, 12):02d}{rng.randint(25, 32)}", (2, 2)
    if kind == "ssn":
        if lang == "ru":
            return r(11), (3, 3, 3, 2)
        return str(rng.randint(100, 899)) + r(6), (3, 2, 4)
    if kind == "phone":
        if lang == "ru":
            return "79" + r(9), (1, 3, 3, 2, 2)
        return str(rng.randint(201, 989)) + r(7), (3, 3, 4)
    return (r(4) + r(6), (4, 6)) if lang == "ru" else (r(9), (9,))


def asr_noise(digits: str, groups: tuple[int, ...], rng: random.Random) -> tuple[str, tuple[int, ...]]:
    """What a recogniser does to a long number: a digit lost or doubled, a whole group lost."""
    d, g = digits, list(groups)
    p = rng.random()
    if p < 0.15 and len(d) > 6:
        i = rng.randrange(len(d))
        d = d[:i] + d[i + 1:]
        k = _group_of(g, i)
        g[k] -= 1
    elif p < 0.25 and len(d) > 6:
        i = rng.randrange(len(d))
        d = d[:i] + d[i] + d[i:]
        g[_group_of(g, i)] += 1
    elif p < 0.35 and len(g) >= 4:
        k = rng.randrange(len(g))
        a = sum(g[:k])
        d = d[:a] + d[a + g[k]:]
        g.pop(k)
    return d, tuple(x for x in g if x > 0)


def _group_of(groups: list[int], i: int) -> int:
    total = 0
    for k, n in enumerate(groups):
        total += n
        if i < total:
            return k
    return len(groups) - 1


def spoken_pairs(chunk: str, lang: str) -> str:
    words = []
    for i in range(0, len(chunk) - 1, 2):
        a, b = int(chunk[i]), int(chunk[i + 1])
        if a == 0:
            words += [DIGIT_WORDS[lang][0], DIGIT_WORDS[lang][b]]
        elif a == 1:
            words.append(TEENS[lang][b])
        else:
            words.append(TENS[lang][a] + ("" if b == 0 else " " + DIGIT_WORDS[lang][b]))
    if len(chunk) % 2:
        words.append(DIGIT_WORDS[lang][int(chunk[-1])])
    return " ".join(words)


def render(digits: str, groups: tuple[int, ...], lang: str, rng: random.Random) -> list[str]:
    """Pieces of text, each a place the speaker may pause, as a recogniser writes them."""
    chunks, at = [], 0
    for n in groups:
        chunks.append(digits[at: at + n])
        at += n
    style = rng.choice(["groups", "contiguous", "digits", "words", "pairs", "dashed", "double"])
    if style == "contiguous":
        return [digits]
    if style == "groups":
        return chunks
    if style == "dashed":
        return ["-".join(c) for c in chunks]
    if style == "pairs":
        return [spoken_pairs(c, lang) for c in chunks]
    if style == "double" and lang == "en":
        out = []
        for c in chunks:
            words = re.sub(r"(\d)\1", lambda m: f" double {DIGIT_WORDS['en'][int(m.group(1))]} ", c)
            out.append(" ".join(DIGIT_WORDS["en"][int(w)] if w.isdigit() else w
                                for w in re.findall(r"double \w+|\d", words)))
        return out
    if style == "words" or style == "double":
        return [" ".join(DIGIT_WORDS[lang][int(x)] for x in c) for c in chunks]
    return list(digits)  # digit by digit, each a possible pause


def split(pieces: list[str], k: int, rng: random.Random) -> list[list[str]]:
    k = max(1, min(k, len(pieces)))
    cuts = sorted(rng.sample(range(1, len(pieces)), k - 1)) if k > 1 else []
    out, at = [], 0
    for c in [*cuts, len(pieces)]:
        out.append(pieces[at:c])
        at = c
    return out


def misspell(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    op = rng.choice(["sub", "del", "add"])
    letters = "abcdefghijklmnopqrstuvwxyz" if word.isascii() else "абвгдеёжзиклмнопрстуфхцчшщыэюя"
    if op == "del" and len(word) > 3:
        return word[:i] + word[i + 1:]
    if op == "add":
        return word[:i] + rng.choice(letters) + word[i:]
    return word[:i] + rng.choice(letters) + word[i + 1:]


def benign(lang: str, rng: random.Random) -> tuple[str, str]:
    """(utterance, the number as said in it)."""
    a, b, c = rng.randint(2, 999), rng.randint(1, 28), rng.randint(10, 99)
    order = str(rng.randint(10 ** 5, 10 ** rng.choice([6, 7, 8, 9, 10]) - 1))
    if lang == "en":
        month = rng.choice(["March", "April", "June", "October", "December"])
        opts = [(f"The total comes to ${a}.{c}.", f"${a}.{c}"), (f"That's {a} dollars.", f"{a} dollars"),
                (f"It will be delivered on {month} {b}th.", f"{month} {b}th"),
                (f"I called on {b:02d}/{rng.randint(1, 12):02d}/2024.", "/2024"),
                (f"Around {rng.randint(1, 12)}:{c} pm, I think.", f":{c} pm"),
                (f"I've been waiting {c} minutes.", f"{c} minutes"),
                (f"Your order number is {order}.", order), (f"The order is {order}, right?", order),
                (f"Tracking number {order}.", order), (f"Reference {order}.", order),
                (f"I paid {a} and then {c} more.", f"{a} and then {c}"), (f"Back in {rng.randint(1990, 2024)}.", "")]
    else:
        month = rng.choice(["марта", "апреля", "июня", "октября", "декабря"])
        opts = [(f"Итого {a} рублей {c} копеек.", f"{a} рублей {c}"), (f"Сумма {a} рублей.", f"{a} рублей"),
                (f"Доставка {b} {month}.", f"{b} {month}"), (f"Звонил в {rng.randint(10, 20)}:{c}.", f":{c}"),
                (f"Жду уже {c} минут.", f"{c} минут"), (f"Номер заказа {order}.", order),
                (f"Мой заказ {order}.", order), (f"Трек номер {order}.", order),
                (f"Заплатил {a}, потом ещё {c}.", f"{a}, потом ещё {c}")]
    text, said = rng.choice(opts)
    return text, said or re.findall(r"\d+", text)[0]


@dataclass
class TextResult:
    runs: int = 0
    survived: int = 0
    digits_left: int = 0
    short_runs: int = 0
    short_left: int = 0
    shown_before: list[int] = field(default_factory=list)
    benign: int = 0
    benign_redacted: int = 0
    holds: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    benign_examples: list[str] = field(default_factory=list)


def text_call(rng: random.Random, res: TextResult) -> None:
    from service.analysis.monitor import CallMonitor
    from service.analysis.redaction import HeldUtterances, apply_redactions

    lang = rng.choice(["en", "ru"])
    kind = rng.choice(["card", "card", "card", "cvv", "expiry", "ssn", "phone", "passport"])
    monitor = CallMonitor(language=lang, segments=False)
    t = rng.uniform(0.5, 5.0)
    said: list[tuple[str, float, float, str]] = []  # (leg, start, end, text)
    benign_said: list[tuple[float, str]] = []
    sensitive_starts: list[float] = []

    def say(leg: str, text: str, seconds: float | None = None, pause: float | None = None) -> float:
        nonlocal t
        dur = seconds or max(0.4, 0.07 * len(text))
        start = t = round(t, 3)  # as events carry it
        said.append((leg, start, start + round(dur, 3), text))
        t = start + round(dur, 3) + (pause if pause is not None else rng.uniform(0.4, 3.0))
        return start

    for _ in range(rng.randint(0, 2)):
        text, num = benign(lang, rng)
        benign_said.append((say(rng.choice(["customer", "agent"]), text), num))
    items = ["card", "expiry", "cvv"] if kind == "card" and rng.random() < 0.4 else [kind]
    for item in items:
        digits, groups = sensitive_number(item, lang, rng)
        digits, groups = asr_noise(digits, groups, rng)
        cue_style = rng.choice(["right", "right", "misheard", "wrong", "agent", "none"])
        cue = rng.choice(CUES[item][lang])
        if cue_style == "misheard":
            words = cue.split()
            k = max(range(len(words)), key=lambda i: len(words[i]))
            words[k] = misspell(words[k], rng)
            cue = " ".join(words)
        elif cue_style == "wrong":
            cue = rng.choice(WRONG_CUES[lang])
        elif cue_style in ("agent", "none"):
            cue = ""
        if cue_style == "agent":
            say("agent", AGENT_ASKS[item][lang])
        pieces = render(digits, groups, lang, rng)
        parts = split(pieces, rng.randint(1, 16), rng)
        for i, part in enumerate(parts):
            sep = rng.choice([", ", " "]) if len(part[0]) == 1 else " "
            text = sep.join(part)
            if i == 0 and cue:
                text = f"{cue} {text}"
            text = text[0].upper() + text[1:] + rng.choice([".", "", ","])
            pause = rng.uniform(0.3, RUN_GAP_S * 0.8) if i + 1 < len(parts) else rng.uniform(0.5, 3.0)
            sensitive_starts.append(say("customer", text, 0.35 * max(1, len(text.split())), pause))
        res.runs += item not in ("cvv", "expiry")
        res.short_runs += item in ("cvv", "expiry")
    for _ in range(rng.randint(0, 2)):
        text, num = benign(lang, rng)
        benign_said.append((say(rng.choice(["customer", "agent"]), text), num))

    events: list[dict[str, Any]] = []
    held = HeldUtterances()
    shown_clear = 0
    for seq, (leg, start, end, text) in enumerate(said):
        now = end + 1.0  # a recogniser's answer comes about a second after the speech ends
        held.release(monitor.redactor.pending if monitor.redactor else None, now)
        for ev in monitor.add_transcript(leg, start, end, text, (), lang):
            d = ev.to_dict()
            events.append(d)
            if d["type"] == "utterance" and monitor.redactor and monitor.redactor.pending(leg, start, now):
                held.hold(seq, d, start, now)
        live = apply_redactions(events)
        shown_clear = max(shown_clear, sum(len(re.findall(r"\d", e["text"])) for e in live
                                           if e["type"] == "utterance" and e["start"] in sensitive_starts))
    held.release(None, said[-1][2] + 1.0 + RUN_GAP_S, everything=True)
    res.holds += held.delays
    final = {(e["leg"], e["start"]): e["text"] for e in apply_redactions(events) if e["type"] == "utterance"}
    left = sum(len(re.findall(r"\d", final.get(("customer", s), ""))) for s in sensitive_starts)
    res.shown_before.append(shown_clear)
    if items == [kind] and kind in ("cvv", "expiry"):
        res.short_left += left
    else:
        res.digits_left += left
        if left >= 6:
            res.survived += 1
            if len(res.examples) < 8:
                res.examples.append(" | ".join(final.get(("customer", s), "") for s in sensitive_starts))
    for start, num in benign_said:
        res.benign += 1
        shown = next((v for (leg, s), v in final.items() if s == start), "")
        if num not in shown:
            res.benign_redacted += 1
            if len(res.benign_examples) < 8:
                res.benign_examples.append(shown)


def run_text(calls: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    res = TextResult()
    for _ in range(calls):
        text_call(rng, res)
    holds = sorted(res.holds) or [0.0]
    out = {
        "calls": calls, "sensitive_runs": res.runs, "runs_surviving_6_digits": res.survived,
        "sensitive_digits_left": res.digits_left,
        "cvv_expiry_numbers": res.short_runs, "cvv_expiry_digits_left": res.short_left,
        "digits_on_screen_before_retraction_p50_p95_max": [statistics.median(res.shown_before),
                                                           _pct(res.shown_before, 95), max(res.shown_before)],
        "benign_numbers": res.benign, "benign_redacted": res.benign_redacted,
        "benign_redacted_pct": round(100 * res.benign_redacted / max(1, res.benign), 2),
        "storage_hold_s_p50_p95_max": [round(statistics.median(holds), 2), round(_pct(holds, 95), 2),
                                       round(max(holds), 2)],
        "screen_delay_s": 0.0,
    }
    for ex in res.examples:
        print("  survived:", ex, file=sys.stderr)
    for ex in res.benign_examples:
        print("  benign redacted:", ex, file=sys.stderr)
    return out


def _pct(xs: list[int] | list[float], p: float) -> float:
    s = sorted(xs)
    return float(s[min(len(s) - 1, int(len(s) * p / 100))]) if s else 0.0


# -- speech --------------------------------------------------------------------------------------------------

SOUNDS = {"en": Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits"),
          "ru": Path("/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/digits")}
PACES = {"ivr": (0.12, 0.12), "careful": (0.55, 0.55), "grouped": (0.08, 1.3)}
"""(pause between digits, pause between groups) in seconds."""


BENIGN_KINDS = ("amount", "time", "date", "duration", "order5", "order8")


def _words_for(n: int) -> list[str]:
    """The digit prompts that say ``n`` (0-999; Russian has no prompts for 200-900) as a number: "1 hundred 20 9"."""
    out = []
    if n >= 100:
        out += [str(n // 100), "hundred"]
        n %= 100
    if n >= 20:
        out.append(str(n // 10 * 10))
        n %= 10
        if n:
            out.append(str(n))
    elif n or not out:
        out.append(str(n))
    return out


def benign_reading(kind: str, lang: str, pace: str, rng: random.Random) -> tuple[Any, str]:
    """One benign number read from the same recorded prompts: (audio, what it is, as text)."""
    import numpy as np
    import soundfile as sf

    def prompt(name: str) -> Any:
        path = SOUNDS[lang] / f"{name}.wav"
        x, rate = sf.read(path if path.exists() else SOUNDS[lang].parent / f"{name}.wav", dtype="int16")
        assert rate == 8000
        return x

    def said(names: list[str], gap: float = 0.08) -> Any:
        out = []
        for name in names:
            out += [prompt(name), np.zeros(int(gap * 8000), dtype=np.int16)]
        return np.concatenate(out)

    if kind == "amount":
        n = rng.choice([rng.randint(2, 99), rng.randint(100, 999) if lang == "en" else rng.randint(20, 99)])
        return said([*_words_for(n), "dollars"]), f"{n} dollars"
    if kind == "time":
        h, m = rng.randint(1, 12), rng.choice([15, 30, 45])
        if rng.random() < 0.5:
            return said(["at", str(h), "oclock"]), f"at {h} o'clock"
        return said([str(h), *_words_for(m), "p-m"]), f"{h}:{m} pm"
    if kind == "date":
        month, day = rng.randint(0, 11), rng.randint(1, 28)
        ordinal = [f"h-{day}"] if day <= 20 or day % 10 == 0 else [str(day // 10 * 10), f"h-{day % 10}"]
        names = ([f"mon-{month}", *ordinal] if lang == "en" else [*ordinal, f"mon-{month}"])
        return said(names), f"month {month + 1} day {day}"
    if kind == "duration":
        n = rng.randint(2, 59)
        return said([*_words_for(n), "minutes"]), f"{n} minutes"
    if kind == "order5":
        digits = "".join(str(rng.randrange(10)) for _ in range(5))
        return read_number(digits, (5,), lang, pace), f"order {digits}"
    digits = "".join(str(rng.randrange(10)) for _ in range(8))
    cue = spoken_cue(ORDER_CUE[lang], lang)
    reading = read_number(digits, (4, 4), lang, pace)
    if cue is None:
        return reading, f"order {digits} (no cue: espeak-ng missing)"
    return np.concatenate([cue, np.zeros(int(0.3 * 8000), dtype=np.int16), reading]), f"order number {digits}"


def add_benign(pieces: list[Any], benign: list[tuple[str, str, float, float]], kind: str, after: str, lang: str,
               pace: str, rng: random.Random) -> None:
    """A benign number appended to ``pieces``, then 2.5 s of silence; its voiced span appended to ``benign``."""
    import numpy as np

    x, what = benign_reading(kind, lang, pace, rng)
    start = sum(len(p) for p in pieces) / 8000
    voiced = np.flatnonzero(np.abs(x.astype(np.int32)) > 300)
    benign.append((after, what, start + voiced[0] / 8000, start + (voiced[-1] + 1) / 8000))
    pieces.extend([x, np.zeros(int(2.5 * 8000), dtype=np.int16)])


ORDER_CUE = {"en": "My order number is", "ru": "Номер заказа"}


def spoken_cue(text: str, lang: str) -> Any:
    """``text`` said by espeak-ng at 8 kHz (the digit prompts have no "order"), or None without it."""
    import shutil
    import subprocess
    import tempfile

    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    if shutil.which("espeak-ng") is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", lang, "-s", "150", "-w", f.name, text], check=True)
        x, rate = sf.read(f.name, dtype="float64")
    y = resample_poly(x, 8000, rate) if rate != 8000 else x
    return (np.clip(y / max(1e-9, np.abs(y).max()) * 0.5, -1, 1) * 32767).astype(np.int16)


def read_number(digits: str, groups: tuple[int, ...], lang: str, pace: str) -> Any:
    return read_number_spans(digits, groups, lang, pace)[0]


def read_number_spans(digits: str, groups: tuple[int, ...], lang: str,
                      pace: str) -> tuple[Any, list[tuple[float, float]]]:
    """The reading, and where each digit's voice lies in it (seconds)."""
    import numpy as np
    import soundfile as sf

    between, group_gap = PACES[pace]
    parts = []
    spans = []
    bounds = set()
    at, n_at = 0, 0
    for n in groups:
        at += n
        bounds.add(at)
    for i, d in enumerate(digits):
        x, rate = sf.read(SOUNDS[lang] / f"{d}.wav", dtype="int16")
        assert rate == 8000
        voiced = np.flatnonzero(np.abs(x.astype(np.int32)) > 300)
        a, b = (voiced[0], voiced[-1] + 1) if len(voiced) else (0, len(x))
        spans.append(((n_at + a) / 8000, (n_at + b) / 8000))
        parts.append(x)
        gap = group_gap if (i + 1) in bounds else between
        parts.append(np.zeros(int(gap * 8000), dtype=np.int16))
        n_at += len(x) + int(gap * 8000)
    return np.concatenate(parts), spans


def audible_digits(original: Any, stored: Any, spans: list[tuple[float, float]], digits: str) -> list[str]:
    """Digits of ``spans`` whose voice the stored channel still holds (more than 40 ms of it not silenced)."""
    import numpy as np

    out = []
    for d, (a, b) in zip(digits, spans, strict=True):
        i, j = int(a * 8000), min(int(b * 8000), len(stored))
        left = np.count_nonzero((stored[i:j] != 0) & (original[i:j] != 0))
        if left > 0.04 * 8000:
            out.append(f"{d}@{a:.2f}-{b:.2f}:{left / 8000:.2f}s")
    return out


async def run_speech(langs: list[str], paces: list[str], seed: int, work: Path,
                     only: set[str] | None = None, listen: bool = False) -> dict[str, Any]:
    import numpy as np
    import soundfile as sf

    from service.analysis.monitor import CallMonitor, MonitorSettings
    from service.analysis.offline_asr import build_offline_asr
    from service.analysis.text_rules import TextRules, text_rules
    from service.cli.analyze import analyze
    from service.core.settings import Settings

    rng = random.Random(seed)
    brng = random.Random(seed + 1000)  # benign numbers: their own draws, so the sensitive ones stay as they were
    rows: list[dict[str, Any]] = []
    settings = Settings(data_dir=work, secret="bench", no_asr=False, recording="all")
    missing = [lang for lang in langs if not SOUNDS[lang].exists()]
    for lang in missing:
        print(f"skipping {lang}: {SOUNDS[lang]} missing (apt-get install asterisk-core-sounds-{lang}-wav)",
              file=sys.stderr)
    langs = [lang for lang in langs if lang not in missing]
    if not langs:
        raise SystemExit("no recorded digit prompts: apt-get install asterisk-core-sounds-en-wav (and -ru-wav)")
    async with _serving(settings) as port:
      # A first call loads the model, so the measured ones do not wait for it.
      # (until one is transcribed: a call that starts while the model loads may get no transcript at all, and
      # then nothing in its recording is silenced either).
      for k in range(5):
          warm = await _live_call(port, settings, read_number("41114111", (4, 4), langs[0], "ivr"),
                                  f"warm-up-{k}", langs[0])
          if any(e.get("type") == "utterance" for e in warm["final"]):
              break
      for lang in langs:
          heard = build_offline_asr(None, lang)
          plain = text_rules()
          raw_rules = TextRules(redact=lambda s: s, find_cues=plain.find_cues, is_backchannel=plain.is_backchannel,
                                rate_tracker=plain.rate_tracker)
          for pace in paces:
              calls = [["card", "cvv"], ["ssn"], ["phone"], ["passport"], ["benign"]]
              for items in calls:
                  pieces, said = [np.zeros(8000, dtype=np.int16)], []
                  spans: list[tuple[float, float]] = []
                  benign: list[tuple[str, str, float, float]] = []  # (kind, as text, start, end)

                  if items == ["benign"]:
                      kinds = list(BENIGN_KINDS)
                      brng.shuffle(kinds)
                      for kind in kinds:
                          add_benign(pieces, benign, kind, "alone", lang, pace, brng)
                  else:
                      for item in items:
                          digits, groups = sensitive_number(item, lang, rng)
                          said.append((item, digits))
                          x, where = read_number_spans(digits, groups, lang, pace)
                          offset = sum(len(p) for p in pieces) / 8000
                          spans += [(a + offset, b + offset) for a, b in where]
                          pieces += [x, np.zeros(int(1.5 * 8000), dtype=np.int16)]
                      # "... and it was the 45 dollars": a benign number 3 s after a sensitive one
                      pieces.append(np.zeros(int(1.5 * 8000), dtype=np.int16))
                      add_benign(pieces, benign, brng.choice(["amount", "time", "date", "duration"]), items[-1],
                                 lang, pace, brng)
                  if only is not None and items[0] not in only:
                      continue  # drawn all the same, so a subset reads the same numbers as the full run
                  customer = np.concatenate(pieces)
                  result = await _live_call(port, settings, customer, f"{lang}-{pace}-{items[0]}", lang,
                                            [(a, b) for _, _, a, b in benign], listen)
                  # The stored WAV, transcribed again with redaction off: what can still be heard.
                  wav, _ = sf.read(result["recording"], dtype="int16")
                  again = analyze(wav[:, 0].copy(), wav[:, 1].copy(), CallMonitor(MonitorSettings(), text=raw_rules,
                                                                                  language=lang), heard)
                  audible = digits_heard(again, [(a, b) for _, _, a, b in benign])
                  before = analyze(customer, np.zeros_like(customer), CallMonitor(MonitorSettings(), text=raw_rules,
                                                                                  language=lang), heard)
                  heard_before = "".join(re.sub(r"\D", "", str(e.to_dict().get("text", "")))
                                         for e in before if e.type == "utterance")
                  raw: list[dict[str, Any]] = [e.to_dict() for e in before if e.type == "utterance"]
                  benign_rows: list[dict[str, Any]] = []
                  for after, what, a, b in benign:
                      texts = [u["text"] for u in raw if u["start"] - 0.3 <= b and a <= u["end"] + 0.3]
                      voice = customer[int(a * 8000):int(b * 8000)] != 0
                      zeroed = np.count_nonzero(voice & (wav[int(a * 8000):int(b * 8000), 0] == 0))
                      benign_rows.append({"after": after, "said": what, "heard": " | ".join(texts),
                                          "heard_digits": bool(re.search(r"\d", " ".join(texts))),
                                          "redacted": benign_redacted(result["final"], a, b),
                                          "silenced_share": round(int(zeroed) / max(1, int(voice.sum())), 2)})
                  rows.append({"lang": lang, "pace": pace, "items": [i for i, _ in said],
                               "digits": sum(len(d) for _, d in said), "heard_unredacted": len(heard_before),
                               "stored_digits": result["stored_digits"], "shown_after": result["shown_after"],
                               "stored_texts": result["stored_texts"],
                               "shown_before_retraction": result["shown_before"],
                               "audible_in_wav": len(audible), "retractions": result["retractions"],
                               "said": [d for _, d in said], "heard": heard_before, "audible": audible,
                               "wav_texts": [str(e.to_dict().get("text")) for e in again if e.type == "utterance"],
                               "silenced": result["silenced"],
                               "unsilenced_digits": audible_digits(customer, wav[:, 0], spans,
                                                                   "".join(d for _, d in said)),
                               "benign": benign_rows, "storage_delays": storage_delays(before, lang)})
                  if result["listened"] is not None:
                      heard_live = np.zeros(len(customer), dtype=np.int16)
                      got = result["listened"][: len(customer), 0]
                      heard_live[: len(got)] = got
                      rows[-1]["listen_in_digits"] = audible_digits(customer, heard_live, spans,
                                                                    "".join(d for _, d in said))
                  print(json.dumps(rows[-1], ensure_ascii=False), file=sys.stderr)
    sensitive = [r for r in rows if r["items"]]
    survived = sum(1 for r in sensitive if max(r["stored_digits"], r["shown_after"]) >= 6)
    numbers: list[dict[str, Any]] = [x for r in rows for x in r["benign"]]
    alone = [x for x in numbers if x["after"] == "alone"]
    delays = sorted(d for r in rows for d in r["storage_delays"]) or [0.0]
    for x in numbers:
        if x["redacted"]:
            print("  benign redacted:", json.dumps(x, ensure_ascii=False), file=sys.stderr)
    return {"calls": len(rows), "numbers": sum(len(r["items"]) for r in rows),
            "digits_read": sum(r["digits"] for r in rows),
            "digits_heard_by_whisper_unredacted": sum(r["heard_unredacted"] for r in sensitive),
            "calls_with_6_digits_stored_or_shown_after": survived,
            "sensitive_digits_stored": sum(r["stored_digits"] for r in sensitive),
            "sensitive_digits_shown_after": sum(r["shown_after"] for r in sensitive),
            "digits_on_screen_before_retraction_max": max((r["shown_before_retraction"] for r in sensitive),
                                                          default=0),
            "digits_audible_in_redacted_wav": sum(r["audible_in_wav"] for r in sensitive),
            "digits_with_voice_left_in_wav": sum(len(r["unsilenced_digits"]) for r in sensitive),
            **({"digits_with_voice_heard_in_listen_in": sum(len(r["listen_in_digits"]) for r in sensitive),
                "calls_with_6_digits_heard_in_listen_in": sum(len(r["listen_in_digits"]) >= 6 for r in sensitive)}
               if listen else {}),
            "benign_numbers": len(numbers), "benign_heard_as_digits": sum(x["heard_digits"] for x in numbers),
            "benign_redacted": sum(x["redacted"] for x in numbers),
            "benign_redacted_pct": round(100 * sum(x["redacted"] for x in numbers) / max(1, len(numbers)), 1),
            "benign_alone_redacted": [sum(x["redacted"] for x in alone), len(alone)],
            "benign_after_sensitive_redacted": [sum(x["redacted"] for x in numbers if x["after"] != "alone"),
                                                len(numbers) - len(alone)],
            "benign_silenced_in_wav_half_or_more": sum(x["silenced_share"] >= 0.5 for x in numbers),
            "screen_delay_s": 0.0,
            "storage_hold_s_p50_p95_max": [round(statistics.median(delays), 2), round(_pct(delays, 95), 2),
                                           round(max(delays), 2)]}


@contextlib.asynccontextmanager
async def _serving(settings: Any) -> AsyncIterator[int]:
    import uvicorn

    from service.web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning",
                                           ws="websockets-sansio", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def _live_call(port: int, settings: Any, customer: Any, call_id: str, lang: str,
                     benign: list[tuple[float, float]] | None = None, listen: bool = False) -> dict[str, Any]:
    """One call through the running app: streamed on the native ingest socket, watched on the agent socket.
    ``listen``: streamed in real time, with a supervisor listening in; what they heard is returned too."""
    import httpx
    import numpy as np
    from websockets.asyncio.client import connect

    from service.core.auth import issue

    def bearer(role: Any, agent: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue(settings.secret, role, agent)}"}

    seen: list[dict[str, Any]] = []
    heard = bytearray()
    if True:
        async with connect(f"ws://127.0.0.1:{port}/v1/ws/agent", additional_headers=bearer("agent", "a1")) as sub:
            async def watch() -> None:
                async for msg in sub:
                    seen.append(json.loads(msg))

            watcher = asyncio.create_task(watch())
            agent = np.zeros_like(customer)
            async with connect(f"ws://127.0.0.1:{port}/v1/ingest/native", additional_headers=bearer("ingest")) as ws:
                await ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": "a1", "sample_rate": 8000,
                                          "encoding": "pcm16", "channels": 2,
                                          "channel_map": ["customer", "agent"], "language": lang}))
                await ws.recv()
                listener = None
                if listen:
                    lst = await connect(f"ws://127.0.0.1:{port}/v1/ws/listen/{call_id}",
                                        additional_headers=bearer("supervisor"))

                    async def listening() -> None:
                        with contextlib.suppress(Exception):
                            async for msg in lst:
                                heard.extend(msg if isinstance(msg, bytes) else b"")
                    listener = asyncio.create_task(listening())
                    await asyncio.sleep(0.2)  # registered before the first audio
                step = 1600
                loop = asyncio.get_running_loop()
                began = loop.time()
                burst, speed = (0.2, 1.0) if listen else (20.0, 1.8)
                for i in range(0, len(customer), step):
                    ahead = i / 8000 - burst - speed * (loop.time() - began)
                    if ahead > 0:  # stay inside the service's limit on audio sent faster than real time
                        await asyncio.sleep(ahead / speed)
                    await ws.send(np.stack([customer[i:i + step], agent[i:i + step]], axis=1)
                                  .astype("<i2").tobytes())
                if listener is not None:
                    for _ in range(300):
                        if len(heard) >= 4 * len(customer):
                            break
                        await asyncio.sleep(0.01)
                await ws.send(json.dumps({"type": "stop"}))
                if listener is not None:
                    await asyncio.wait_for(listener, 30)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=bearer("supervisor")) as c:
                for _ in range(6000):
                    call = (await c.get(f"/v1/calls/{call_id}")).json()
                    if call.get("status") not in ("live", "closing"):
                        break
                    await asyncio.sleep(0.05)
                events = (await c.get(f"/v1/calls/{call_id}/events")).json()["events"]
                rows = (await c.get(f"/v1/calls/{call_id}/transcript")).json()["utterances"]
            await asyncio.sleep(0.3)
            watcher.cancel()
    from service.analysis.redaction import apply_redactions

    def count(texts: list[str]) -> int:
        return len(re.sub(r"\D", "", " ".join(texts)))

    words_of = {(e["leg"], e["start"]): e.get("words", []) for e in apply_redactions(events)
                if e["type"] == "utterance"}

    def sensitive(utterances: list[dict[str, Any]]) -> int:
        """Digits in ``utterances``, less those of words said in a benign number's span."""
        n = 0
        for u in utterances:
            spans = [(a, b) for a, b in benign or () if u["start"] - 0.3 <= b and a <= u["end"] + 0.3]
            words = u.get("words") or words_of.get((u["leg"], u["start"]), [])
            if not spans:
                n += count([u["text"]])
            elif words:
                n += count([w["word"] for w in words
                            if not any(a - 0.3 <= (w["start"] + w["end"]) / 2 <= b + 0.3 for a, b in spans)])
            else:
                n += count([u["text"]])  # cannot tell the numbers apart: all counted
        return n

    utterances = [e for e in events if e["type"] in ("utterance", "utterance_redacted")]
    stored = max(sensitive(rows), sensitive(utterances))
    final = [e for e in apply_redactions(seen) if e["type"] == "utterance"]
    shown_before = sensitive([e for e in seen if e["type"] == "utterance"])
    listened = np.frombuffer(bytes(heard[: len(heard) // 4 * 4]), dtype="<i2").reshape(-1, 2)
    return {"recording": settings.data_dir / "recordings" / f"{call_id}.wav", "stored_digits": stored,
            "listened": listened if listen else None,
            "shown_after": sensitive(final), "shown_before": shown_before,
            "stored_texts": [r["text"] for r in rows], "final": apply_redactions(events) + final,
            "silenced": sorted({(e["start"], tuple(tuple(x) for x in e.get("silenced", ()))) for e in seen
                                if e["type"] == "utterance_redacted"}),
            "retractions": sum(e["type"] == "utterance_redacted" for e in seen)}


def digits_heard(events: list[Any], benign: list[tuple[float, float]]) -> str:
    """The digits in the words of ``events``' utterances, less those said in a benign number's span."""
    out = []
    for e in events:
        if e.type != "utterance":
            continue
        d: dict[str, Any] = e.to_dict()
        for w in d.get("words", []):
            if not any(a - 0.3 <= (w["start"] + w["end"]) / 2 <= b + 0.3 for a, b in benign):
                out.append(re.sub(r"\D", "", str(w["word"])))
    return "".join(out)


def benign_redacted(final: list[dict[str, Any]], a: float, b: float) -> bool:
    """Whether the number said in ``a``..``b`` was hidden: a tag among its words, or in its utterance's text when
    the words are gone."""
    for u in final:
        if u.get("type") != "utterance" or u["leg"] != "customer" or u["end"] < a - 0.3 or u["start"] > b + 0.3:
            continue
        words = u.get("words") or []
        if words:
            if any(w["word"].startswith("[") and w["start"] <= b + 0.2 and w["end"] >= a - 0.2 for w in words):
                return True
        elif "[" in u["text"]:
            return True
    return False


def storage_delays(before: list[Any], lang: str) -> list[float]:
    """How long each utterance of the call would wait for storage (``HeldUtterances``), replayed from what the
    recogniser wrote with redaction off, checked every 0.1 s of call time as the pipeline does with each chunk."""
    from models.redact_call import CallRedactor
    from service.analysis.redaction import HeldUtterances

    red, held = CallRedactor(), HeldUtterances()
    now = 0.0
    utts = sorted((e for e in before if e.type == "utterance"), key=lambda e: e.t)
    for k, e in enumerate(utts):
        while now < e.t:
            now = min(e.t, now + 0.1)
            held.release(red.pending, now)
        red.add(e.leg, e.start, e.end, e.text, tuple(e.words))
        if red.pending(e.leg, e.start, e.t):
            held.hold(k, {"leg": e.leg, "start": e.start}, e.start, e.t)
    while len(held) and now < (utts[-1].t if utts else 0.0) + RUN_GAP_S + 0.2:
        now += 0.1
        held.release(red.pending, now)
    held.release(None, now, everything=True)
    return held.delays


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["text", "speech"])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--langs", default="en,ru")
    p.add_argument("--paces", default=",".join(PACES))
    p.add_argument("--work", type=Path, default=Path("/tmp/callwatch-redaction-bench"))
    p.add_argument("--listen", action="store_true", help="speech: stream in real time with a supervisor "
                   "listening in, and count the digits they heard")
    p.add_argument("--only", default="", help="speech: only these calls (card, ssn, phone, passport, benign), "
                   "numbers drawn as in the full run")
    args = p.parse_args(argv)
    if args.mode == "text":
        out = run_text(args.calls, args.seed)
    else:
        # A store of its own for each run: the calls have the same ids from run to run, and a store that already
        # holds one answers with the earlier run's transcript.
        args.work.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="run-", dir=args.work))
        print(f"store and recordings of this run: {work}", file=sys.stderr)
        out = asyncio.run(run_speech(args.langs.split(","), args.paces.split(","), args.seed, work,
                                     set(args.only.split(",")) if args.only else None, args.listen))
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
