"""Numbers as a recogniser writes them down: digit groups, spoken digit words, and the formats that mark a number
as harmless (amounts, times, dates, durations).

``tokenize(text)`` splits one utterance into word, number, email and "keep" tokens with their character spans.
A number token carries the digits it stands for and how they were grouped ("4111 1111" is two groups of four,
"1-2-3" one group of three said digit by digit, "fifty four" the group "54"), because the grouping of a
spoken number is evidence of what it is (``123-45-6789`` is shaped like a social security number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["word", "number", "keep", "email"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    start: int
    """Character span in the utterance's text."""
    end: int
    word: str = ""
    """Lower-cased, for words."""
    digits: str = ""
    """For numbers (and for kept numbers, which may still be an expiry date)."""
    groups: tuple[int, ...] = ()
    """Lengths of the digit groups as written or said."""
    plus: bool = False
    """Written with a leading ``+`` (an international phone number)."""
    date_like: bool = False
    """A kept number shaped like a date (``12/27``), which next to "expiry" is card data after all."""


_UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
    "ноль": 0, "нуль": 0, "один": 1, "одна": 1, "одно": 1, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5,
    "шесть": 6, "семь": 7, "восемь": 8, "девять": 9,
}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "десять": 10, "одиннадцать": 11, "двенадцать": 12, "тринадцать": 13, "четырнадцать": 14, "пятнадцать": 15,
    "шестнадцать": 16, "семнадцать": 17, "восемнадцать": 18, "девятнадцать": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
    "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50, "шестьдесят": 60, "семьдесят": 70,
    "восемьдесят": 80, "девяносто": 90,
}
_HUNDREDS = {
    "сто": 100, "двести": 200, "триста": 300, "четыреста": 400, "пятьсот": 500, "шестьсот": 600, "семьсот": 700,
    "восемьсот": 800, "девятьсот": 900,
}
_REPEAT = {"double": 2, "triple": 3, "двойной": 2, "двойная": 2, "дважды": 2}
_MULTIPLIERS = {"hundred": 100, "thousand": 1000, "тысяча": 1000, "тысячи": 1000, "тысяч": 1000}
NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TEENS) | frozenset(_TENS) | frozenset(_HUNDREDS) | frozenset(
    _REPEAT) | frozenset(_MULTIPLIERS)
_WEAK = frozenset({"oh", "o", "double", "triple", "hundred", "thousand", "двойной", "двойная", "дважды"})
"""Number words that are numbers only next to another one ("oh, I see"; "a double room")."""

MONEY_WORDS = frozenset({
    "dollar", "dollars", "bucks", "cent", "cents", "euro", "euros", "pound", "pounds", "usd", "eur", "rub",
    "руб", "рубль", "рубля", "рублей", "копеек", "копейки", "копейка", "доллар", "доллара", "долларов", "евро",
    "percent", "процент", "процента", "процентов", "k", "грн", "тенге",
})
TIME_WORDS = frozenset({
    "am", "pm", "a", "p", "o'clock", "oclock", "час", "часа", "часов", "утра", "вечера", "дня", "ночи",
    "minute", "minutes", "min", "mins", "hour", "hours", "second", "seconds", "day", "days", "week", "weeks",
    "month", "months", "year", "years", "минут", "минуты", "минуту", "секунд", "секунды", "дней", "день",
    "недели", "недель", "месяц", "месяца", "месяцев", "год", "года", "лет", "times", "раз", "items", "штук",
    "people", "человек", "gb", "mb", "kg", "кг", "km", "км", "miles",
})
MONTHS = frozenset({
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября",
    "декабря", "январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь",
    "ноябрь", "декабрь",
})
_YEAR_BEFORE = frozenset({"in", "since", "year", "of", "from", "until", "till", "в", "с", "до", "году", "года"})
_ORDINAL_SUFFIX = re.compile(r"(?:st|nd|rd|th|го|е|й|ое|ого|ый|ий|ье|м|х)$", re.IGNORECASE)

_TOKEN = re.compile(
    r"(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.\w{2,})"
    r"|(?P<cur>[$€£₽¥]\s?)?(?P<num>\+?\d+(?:(?:[.,:/\-]|\s-\s)\d+)*)(?P<suf>-?[^\W\d_]+)?(?P<pct>\s?%)?"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
)
_TIME_SHAPE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_DATE_SHAPE = re.compile(r"\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?|\d{4}-\d{2}-\d{2}")
_DECIMAL_SHAPE = re.compile(r"\d+[.,]\d{1,2}")
_YEAR_SHAPE = re.compile(r"(?:19|20)\d\d")
_DIGIT_BY_DIGIT = re.compile(r"\d(?:[.,]\d)+")
"""How Whisper writes digits said one at a time ("8.0.", "4.1.1"): not a decimal, nor a date (month 0)."""


def _groups(raw: str) -> tuple[str, tuple[int, ...]]:
    parts = [p for p in re.split(r"[^\d]+", raw) if p]
    digits = "".join(parts)
    if len(parts) > 1 and all(len(p) == 1 for p in parts):
        return digits, (len(digits),)  # "1-2-3": one group said digit by digit
    if len(parts) > 1 and "," in raw and all(len(p) == 3 for p in parts[1:]):
        return digits, (len(digits),)  # "4,111,111": a recogniser's thousands commas, not the speaker's groups
    return digits, tuple(len(p) for p in parts)


def compose(words: list[str]) -> list[str]:
    """Digit groups said by a run of number words: "fifty four fifty four" -> ["54", "54"],
    "four one one one" -> ["4", "1", "1", "1"], "double five" -> ["55"], "сто двадцать три" -> ["123"]."""
    groups: list[str] = []
    cur: int | None = None
    open_for = 0  # the largest part ``cur`` can still take: 0 none, 10 a unit, 100 tens or teens, 1000 hundreds
    repeat = 0

    def flush() -> None:
        nonlocal cur, open_for
        if cur is not None:
            groups.append(str(cur))
        cur, open_for = None, 0

    for w in words:
        if w in _REPEAT:
            flush()
            repeat = _REPEAT[w]
            continue
        if w in _UNITS:
            v = _UNITS[w]
            if repeat:
                groups.append(str(v) * repeat)
                repeat = 0
            elif cur is not None and open_for >= 10 and v > 0:
                cur += v
                flush()
            else:
                flush()
                groups.append(str(v))
        elif w in _TEENS:
            if cur is not None and open_for >= 100:
                cur += _TEENS[w]
                flush()
            else:
                flush()
                groups.append(str(_TEENS[w]))
        elif w in _TENS:
            if cur is not None and open_for >= 100:
                cur += _TENS[w]
                open_for = 10
            else:
                flush()
                cur, open_for = _TENS[w], 10
        elif w in _HUNDREDS:
            if cur is not None and open_for >= 1000:
                cur += _HUNDREDS[w]
                open_for = 100
            else:
                flush()
                cur, open_for = _HUNDREDS[w], 100
        elif w in _MULTIPLIERS:
            base = _MULTIPLIERS[w]
            if cur is None and groups and groups[-1].isdigit() and len(groups[-1]) <= 3:
                cur = int(groups.pop())
            cur = (cur or 1) * base
            open_for = base
    flush()
    return groups


def _next_word(text: str, end: int) -> str:
    # Whisper writes a comma where the speaker paused ("Сорок, минут!"): the word after it is still the next.
    m = re.match(r"[\s,]*([^\W\d_]+(?:['’][^\W\d_]+)?)", text[end:])
    if m is None:
        return ""
    word = m.group(1).lower()
    if word == "после" and _next_word(text, m.end() + end) in _AFTER_TIME:
        return "pm"  # "7-30 после полудня": a time of day
    return word


_AFTER_TIME = frozenset({"полудня", "полуночи", "обеда"})


def _prev_word(text: str, start: int) -> str:
    m = re.search(r"([^\W\d_]+)\W*$", text[:start])
    return m.group(1).lower() if m else ""


def _number(text: str, m: re.Match[str]) -> Token:
    raw = m.group("num")
    start, end = m.start(), m.end()
    suffix = (m.group("suf") or "").lstrip("-").lower()
    digits, groups = _groups(raw)
    after, before = suffix or _next_word(text, end), _prev_word(text, start)
    spelled = _DIGIT_BY_DIGIT.fullmatch(raw) is not None
    keep = (
        bool(m.group("cur")) or bool(m.group("pct")) or after in MONEY_WORDS or after in TIME_WORDS
        or _TIME_SHAPE.fullmatch(raw) is not None or (_DECIMAL_SHAPE.fullmatch(raw) is not None and not spelled)
        or (len(digits) <= 4 and (after in MONTHS or before in MONTHS))
        or (bool(suffix) and _ORDINAL_SUFFIX.search(suffix) is not None and len(digits) <= 4)
        or (_YEAR_SHAPE.fullmatch(raw) is not None and (before in _YEAR_BEFORE or before in MONTHS))
    )
    date_like = _DATE_SHAPE.fullmatch(raw) is not None and not spelled
    if keep or date_like:
        return Token("keep", start, end, digits=digits, groups=groups, date_like=date_like)
    # A word glued to the digits ("4111and") is not part of the number: end the span at the digits.
    end = m.end("num")
    return Token("number", start, end, digits=digits, groups=groups, plus=raw.startswith("+"))


def tokenize(text: str) -> list[Token]:
    raw: list[Token] = []
    for m in _TOKEN.finditer(text):
        if m.group("email"):
            raw.append(Token("email", m.start(), m.end()))
        elif m.group("num"):
            raw.append(_number(text, m))
        else:
            raw.append(Token("word", m.start(), m.end(), word=m.group("word").lower().replace("’", "'")))
    return _lead_into_amounts(text, _merge_number_words(text, raw))


_LEAD_MAX_DIGITS = 3


def _lead_into_amounts(text: str, tokens: list[Token]) -> list[Token]:
    """A short number written just before an amount or a time is its first part: Whisper splits one spoken
    number where the speaker's voice paused ("50, 2 долларов" for 52 dollars; "10, 45 после полудня" for
    10:45 pm; "700 and 86 dollars")."""
    out = list(tokens)
    for k in range(len(out) - 2, -1, -1):
        t, nxt = out[k], out[k + 1]
        if t.kind != "number" or len(t.digits) > _LEAD_MAX_DIGITS or t.plus or (k > 0 and out[k - 1].kind == "number"):
            continue
        between = text[t.end: nxt.start]
        if nxt.kind == "word" and nxt.word in ("and", "и") and t.digits.endswith("00") and k + 2 < len(out):
            between, nxt = text[t.end: out[k + 2].start], out[k + 2]
        if nxt.kind == "keep" and not nxt.date_like and re.fullmatch(r"[\s,\-]*(?:(?:and|и)\s+)?", between):
            out[k] = Token("keep", t.start, t.end, digits=t.digits, groups=t.groups)
    return out


def _merge_number_words(text: str, tokens: list[Token]) -> list[Token]:
    """Consecutive number words become one number token; a weak one ("oh", "double") only beside another."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind != "word" or t.word not in NUMBER_WORDS:
            out.append(t)
            i += 1
            continue
        j = i
        while j < len(tokens) and tokens[j].kind == "word" and tokens[j].word in NUMBER_WORDS and (
                j == i or re.fullmatch(r"[\s,.\-]*", text[tokens[j - 1].end: tokens[j].start])):
            j += 1
        words = [tokens[k].word for k in range(i, j)]
        while words and words[0] in _WEAK and not (len(words) > 1 or (out and out[-1].kind == "number")):
            out.append(tokens[i])
            i += 1
            words = words[1:]
        if not words:
            continue
        if words[-1] in _REPEAT:  # "double" with nothing after it
            j -= 1
            words = words[:-1]
            if not words:
                out.append(tokens[i])
                i += 1
                continue
        groups = compose(words)
        first = tokens[i].start
        prev = out[-1] if out else None
        if (words[0] in _MULTIPLIERS and prev is not None and prev.kind == "number" and len(prev.digits) <= 3
                and prev.digits.isdigit() and not text[prev.end:tokens[i].start].strip()):
            # "7 hundred 80": the digits before a multiplier word are what it multiplies
            base = _MULTIPLIERS[words[0]]
            groups[0] = str(int(groups[0]) + (int(prev.digits) - 1) * base)
            first = prev.start
            out.pop()
        after = _next_word(text, tokens[j - 1].end)
        digits = "".join(groups)
        kind: TokenKind = "keep" if after in MONEY_WORDS or after in TIME_WORDS or after in MONTHS else "number"
        out.append(Token(kind, first, tokens[j - 1].end, digits=digits, groups=tuple(len(g) for g in groups)))
        i = j
    return out
