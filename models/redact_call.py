"""Redaction with call memory: numbers that run on across utterances are judged whole.

Callers read card numbers digit by digit or in groups with pauses, and the VAD cuts such a reading into many
utterances, each harmless alone. ``CallRedactor`` keeps the recent utterances of each leg, assembles the digits
that run on from one to the next (with fillers and pauses up to ``RUN_GAP_S`` between them), and judges each
run with the cue words said near it, on either leg. When a run turns out sensitive, every earlier utterance
holding part of it comes back as a revision to show and store in its place, with the audio spans to silence.

Pure and clock-free: times are call seconds passed in with each utterance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from models.redact_rules import SENSITIVE, Run, classify, cue_of, two_word_cue
from models.spoken_numbers import MONEY_WORDS, MONTHS, TIME_WORDS, Token, tokenize

Words = tuple[tuple[str, float, float], ...]

RUN_GAP_S = 5.0
"""Digits separated by a pause up to this long, with nothing but fillers between them, are one number."""
CUE_S = 20.0
"""A cue word counts for numbers said up to this long after it."""
ORDER_CUE_S = 10.0
""""order number", "tracking" count only for a number said soon after: they keep it in the clear."""
CHAIN_GAP_S = 2.0
"""Digits read one at a time come a second or so apart, each its own utterance."""
CHAIN_MIN = 4
"""Utterances of a reading, at least, before words among them count as misheard digits..."""
CHAIN_MIN_DIGITS = 2
"""...with at least this many digits heard as digits."""
AMOUNT_S = 2.5
"""A unit word ("dollars", "minutes") that a recogniser put in an utterance of its own makes the digits said in
this much before it an amount or a duration ("780 | 6 | Dollars"), as it does within one utterance."""
MISHEARD_MAX_S = 1.6
"""An utterance of one word no longer than this can be one digit said on its own."""
KEEP_S = 90.0
"""Utterances older than this (from the newest on their leg) are forgotten."""
SILENCE_PAD_S = 0.15
"""Recogniser word timings are off by up to about this much."""
FILLERS = frozenset({
    "uh", "um", "umm", "er", "erm", "ah", "eh", "hmm", "mm", "okay", "ok", "yes", "yeah", "dash", "hyphen", "space",
    "э", "ээ", "эм", "ну", "так", "тире", "да", "пробел",
})
"""Words a reader says inside one number. Not "and", "then", "потом": "I paid 45 and then 30" is two numbers."""


@dataclass(frozen=True, slots=True)
class Redacted:
    """One utterance as it may be shown and stored."""

    leg: str
    start: float
    end: float
    text: str
    words: Words
    tags: tuple[str, ...]
    """What was hidden in it, e.g. ("card",); empty when nothing was."""
    silence: tuple[tuple[float, float], ...]
    """Call-time spans whose audio held what the text hides."""


@dataclass(frozen=True, slots=True)
class Update:
    utterance: Redacted
    """The utterance just added, as it may be shown now."""
    revised: tuple[Redacted, ...]
    """Earlier utterances whose text changes: each replaces the one of the same leg and start."""


@dataclass(slots=True)
class _Utt:
    leg: str
    start: float
    end: float
    text: str
    words: Words
    tokens: list[Token]
    times: list[tuple[float, float]]
    word_chars: list[tuple[int, int]] | None
    redacted: dict[int, str] = field(default_factory=dict)
    run_start: dict[int, float] = field(default_factory=dict)
    """Per redacted token: where the run that hid it began."""
    run_of: dict[int, frozenset[tuple[int, int]]] = field(default_factory=dict)
    """Per redacted token: the tokens of the run that hid it, as (id of utterance, index)."""
    shown: str | None = None


@dataclass(slots=True)
class _Run:
    parts: list[tuple[_Utt, int]]
    digits: str = ""
    groups: tuple[int, ...] = ()

    @property
    def start(self) -> float:
        u, i = self.parts[0]
        return u.times[i][0]

    @property
    def end(self) -> float:
        u, i = self.parts[-1]
        return u.times[i][1]


def _word_chars(text: str, words: Words) -> list[tuple[int, int]] | None:
    """Where each recognised word lies in the text, or None when they do not line up."""
    spans = []
    cursor = 0
    for w, _, _ in words:
        core = w.strip()
        at = text.find(core, cursor) if core else cursor
        if at < 0:
            return None
        if any(ch.isalnum() for ch in text[cursor:at]):
            return None  # the words skip part of the text, which may be what needs hiding
        spans.append((at, at + len(core)))
        cursor = at + len(core)
    return None if any(ch.isalnum() for ch in text[cursor:]) else spans


def _token_times(u_start: float, u_end: float, text: str, tokens: list[Token], words: Words,
                 word_chars: list[tuple[int, int]] | None) -> list[tuple[float, float]]:
    out = []
    n = max(len(text), 1)
    for t in tokens:
        hit = [(s, e) for (cs, ce), (_, s, e) in zip(word_chars or [], words, strict=False)
               if cs < t.end and ce > t.start]
        if hit:
            out.append((min(s for s, _ in hit), max(e for _, e in hit)))
        else:
            span = u_end - u_start
            out.append((u_start + span * t.start / n, u_start + span * t.end / n))
    return out


def _digits(u: _Utt, i: int, misheard: set[tuple[int, int]]) -> str:
    return "?" if (id(u), i) in misheard else u.tokens[i].digits


_NOT_DIGITS = MONEY_WORDS | TIME_WORDS | MONTHS
_UNITS_ALONE = (MONEY_WORDS | TIME_WORDS) - {"a", "p", "am", "k", "min", "second"}
"""Unit words that still say "amount" at the start of an utterance of their own ("A moment", "Second, ..." do
not)."""


_UNIT_AFTER = MONEY_WORDS | TIME_WORDS | {"после"}
"""Words after a kept number that make it an amount, a time or a duration ("после полудня")."""
AMOUNT_LEAD_DIGITS = 4
"""The most digits an amount's first part, said before the utterance with its unit, may have."""


def _amount_led(u: _Utt) -> bool:
    """Whether ``u`` begins with an amount, time or duration, or with a unit word of its own."""
    content = [u.tokens[i] for i in _content(u)]
    if not content:
        return False
    first = content[0]
    if first.kind == "word":
        return first.word in _UNITS_ALONE
    if first.kind != "keep" or first.date_like:
        return False
    after = content[1] if len(content) > 1 else None
    spelled_unit = after is not None and after.kind == "word" and after.word in _UNIT_AFTER
    written = u.text[first.start:first.end]
    return spelled_unit or written[:1] in "$€£₽¥" or written.endswith("%") or ":" in written


def _one_number(parts: list[tuple[str, str]]) -> bool:
    """Whether these tokens (as written, their digits), in order, can be the parts of one spoken number ("780",
    "6"; "70"; a misheard word standing for one digit). Digits written apart ("8.0.", "1, 2") were said one
    at a time: not an amount."""
    if not parts or any(_SPELLED.search(written) for written, _ in parts):
        return False
    if len(parts) == 1 and not parts[0][1]:
        return True  # one word, misheard
    value = ""
    for _, digits in parts:
        zeros = len(value) - len(value.rstrip("0"))
        if not digits or (value and len(digits) > zeros):
            return False
        value = str(int(value or "0") + int(digits))
    return len(value) <= AMOUNT_LEAD_DIGITS


_SPELLED = re.compile(r"(?<!\d)\d\W+\d(?!\d)")
"""Single digits written apart ("8.0.", "1, 2"): said one at a time, as a code is, not as an amount."""


def _digit_like(word: str) -> bool:
    """Could be a digit word misheard: short, and not a word that says what a number is."""
    return 1 <= len(word) <= 9 and word not in _NOT_DIGITS and cue_of(word) is None


def _content(u: _Utt) -> list[int]:
    """Indices of ``u``'s tokens other than fillers."""
    return [i for i, t in enumerate(u.tokens) if not (t.kind == "word" and t.word in FILLERS)]


def _digits_only(u: _Utt) -> bool:
    content = _content(u)
    return bool(content) and all(u.tokens[i].kind == "number" for i in content)


def _lone_word(u: _Utt) -> int | None:
    """The index of ``u``'s one word when ``u`` is short enough to be one digit said alone and the word could be
    that digit misheard ("Син" for "семь"), else None."""
    content = _content(u)
    if len(content) != 1 or u.end - u.start > MISHEARD_MAX_S:
        return None
    t = u.tokens[content[0]]
    return content[0] if t.kind == "word" and _digit_like(t.word) else None


class CallRedactor:
    """The redaction memory of one call, both legs."""

    def __init__(self) -> None:
        self._legs: dict[str, list[_Utt]] = {}
        self._runs_heard: dict[str, list[tuple[float, float]]] = {}
        """Per leg: the audio span of each sensitive run, from its first digit to its last, as last judged."""
        self._silenced: set[tuple[float, float]] = set()
        """Run spans already handed out (``Update.utterance.silence``)."""
        self._sensitive_cue_at = -1e9
        """Call time of the latest cue word for a sensitive number (card, CVV, SSN, ...), either leg."""
        self._forgotten = -1e9
        """The end of the newest utterance dropped from memory (``KEEP_S``), either leg: judgements of runs that
        began within ``CUE_S`` after it no longer see all their evidence."""
        self._number_open: dict[str, float] = {}
        """Per leg: where its newest utterance ended, when it ended with digits that the next words could
        continue."""

    def add(self, leg: str, start: float, end: float, text: str, words: Words = ()) -> Update:
        tokens = tokenize(text)
        chars = _word_chars(text, words) if words else None
        utt = _Utt(leg, start, end, text, tuple(words), tokens,
                   _token_times(start, end, text, tokens, words, chars), chars)
        seq = self._legs.setdefault(leg, [])
        seq.append(utt)
        seq.sort(key=lambda u: u.start)
        newest = max(u.end for u in seq)
        dropped = [u.end for u in seq if not (u.end >= newest - KEEP_S or u is utt)]
        self._forgotten = max([self._forgotten, *dropped])
        seq[:] = [u for u in seq if u.end >= newest - KEEP_S or u is utt]
        heard = self._runs_heard.get(leg, [])
        heard[:] = [(a, b) for a, b in heard if b >= newest - KEEP_S]
        before = {id(u): dict(u.redacted) for s in self._legs.values() for u in s}
        cues = self._cues()
        self._sensitive_cue_at = max([self._sensitive_cue_at] + [t for t, cat, _ in cues if cat in SENSITIVE])
        if utt is seq[-1]:
            self._number_open[leg] = end if self._ends_with_number(utt) else -1e9
        numbers = {name: [(u.times[i][0], id(u)) for u in s for i, t in enumerate(u.tokens) if t.kind == "number"]
                   for name, s in self._legs.items()}
        # Judged afresh with what is known now. What was hidden stays hidden (a later, partial view of a number
        # must not uncover it), except digits that words heard since show to be the start of an amount said after
        # the number ("... 1 2 3 4. | 780 | 6 | Dollars"), where the judgement still sees all its evidence (no cue
        # for them forgotten).
        earlier = [(u, u.redacted, u.run_start, u.run_of) for s in self._legs.values() for u in s]
        for u, _, _, _ in earlier:
            u.redacted, u.run_start, u.run_of = {}, {}, {}
        amounts = {name: self._amounts(s) for name, s in self._legs.items()}
        for name in self._legs:
            self._judge(name, cues, numbers, amounts[name])
        amount_tokens = set().union(*amounts.values())
        for u, hidden, starts, runs in earlier:
            for i, tag in hidden.items():
                # Shown again: the amount's own digits, and the rest of a run that is no number to hide once
                # they are out of it.
                shown_again = ((id(u), i) in amount_tokens or bool(runs.get(i, frozenset()) & amount_tokens)) \
                    and starts.get(i, -1e9) - CUE_S > self._forgotten
                if i not in u.redacted and not shown_again:
                    u.redacted[i], u.run_start[i] = tag, starts.get(i, -1e9)
                    u.run_of[i] = runs.get(i, frozenset())
        revised = []
        for s in self._legs.values():
            for u in s:
                if u is not utt and u.redacted != before[id(u)]:
                    revised.append(self._render(u))
        shown = self._render(utt)
        spans = [span for span in self._run_spans() if span not in self._silenced]
        self._silenced.update(spans)
        spans = [(a, b) for a, b in spans if not any(s <= a and b <= e for s, e in shown.silence)]
        if spans:
            shown = replace(shown, silence=shown.silence + tuple(spans))
        return Update(shown, tuple(revised))

    def _run_spans(self) -> list[tuple[float, float]]:
        """The audio to silence for the sensitive runs of every leg, across utterance boundaries: from the first
        digit of a run to its last, and on from one sensitive run to the next on the same leg when they are
        under ``RUN_GAP_S`` apart. Between the digits a recogniser wrote down lie the ones it dropped, merged or
        heard as another word ("четыре" as "Чупири"): they are as audible as the rest."""
        out = []
        for spans in self._runs_heard.values():
            merged: list[tuple[float, float]] = []
            for a, b in sorted(spans):
                if merged and a - merged[-1][1] <= RUN_GAP_S:
                    merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
                else:
                    merged.append((a, b))
            out += merged
        return out

    @staticmethod
    def _ends_with_number(u: _Utt) -> bool:
        for t in reversed(u.tokens):
            if t.kind == "number":
                return True
            if t.kind != "word" or t.word not in FILLERS:
                return False
        return False

    def guarding(self, leg: str, now: float) -> bool:
        """Whether ``leg``'s live audio should be kept from listen-in at call time ``now``: a cue for a sensitive
        number was said on either leg within ``CUE_S``, or the leg's newest utterance ended with digits that it
        may still be reading. Known only once the words are transcribed, so a listener may hear the first group
        of a number said with no cue before it (one transcription delay), never the rest."""
        return now - self._sensitive_cue_at <= CUE_S or now < self._number_open.get(leg, -1e9) + RUN_GAP_S

    def pending(self, leg: str, start: float, now: float) -> bool:
        """Whether the utterance of ``leg`` at ``start`` may still be revised: it holds the digits of a number
        that the next words could continue."""
        seq = self._legs.get(leg, [])
        if not seq:
            return False
        runs = self._runs(seq, self._amounts(seq))
        if not runs:
            return False
        last = runs[-1]
        tail_utt, tail_idx = last.parts[-1]
        if tail_utt is not seq[-1] or now >= tail_utt.end + RUN_GAP_S:
            return False
        if any(t.kind != "word" or t.word not in FILLERS for t in tail_utt.tokens[tail_idx + 1:]):
            return False  # the number is followed by other words: it is over
        return start >= last.parts[0][0].start - 1e-3  # starts arrive rounded to the millisecond

    # -- judging ------------------------------------------------------------------------------------------

    def _cues(self) -> list[tuple[float, str, str]]:
        """(time, category, leg) of every cue word in memory."""
        out = []
        for leg, seq in self._legs.items():
            for u in seq:
                words = [(i, t) for i, t in enumerate(u.tokens) if t.kind == "word"]
                for k, (i, t) in enumerate(words):
                    nxt = words[k + 1][1].word if k + 1 < len(words) else ""
                    cat = two_word_cue(t.word, nxt) or cue_of(t.word)
                    if cat == "order" and nxt == "to":
                        continue  # "in order to"
                    if cat is not None:
                        out.append((u.times[i][0], cat, leg))
        return sorted(out)

    def _runs(self, seq: list[_Utt], amounts: set[tuple[int, int]]) -> list[_Run]:
        """The numbers of one leg: digits (and misheard digits) running on across utterances, less ``amounts``."""
        runs: list[_Run] = []
        cur: _Run | None = None
        prev: _Utt | None = None
        misheard = self._misheard(seq)
        for u in seq:
            if cur is not None and prev is not None and u.start - prev.end > RUN_GAP_S:
                cur = None
            for i, t in enumerate(u.tokens):
                if (t.kind == "number" or (id(u), i) in misheard) and (id(u), i) not in amounts:
                    if cur is None:
                        cur = _Run([])
                        runs.append(cur)
                    cur.parts.append((u, i))
                    cur.digits += _digits(u, i, misheard)
                    cur.groups += t.groups or (1,)
                elif t.kind == "word" and t.word in FILLERS:
                    continue
                else:
                    cur = None
                    if t.kind == "keep" and t.date_like:
                        runs.append(_Run([(u, i)], t.digits, t.groups))
            prev = u
        return runs

    @staticmethod
    def _reading_on(seq: list[_Utt], k: int) -> bool:
        """Whether ``seq[k]`` follows digits (or a lone word, a digit misheard) said less than ``CHAIN_GAP_S``
        before it: the next digit of a number read one at a time, not the start of an amount."""
        if k == 0 or seq[k].start - seq[k - 1].end >= CHAIN_GAP_S:
            return False
        before = seq[k - 1]
        return _lone_word(before) is not None or any(before.tokens[i].kind == "number" for i in _content(before))

    @staticmethod
    def _amounts(seq: list[_Utt]) -> set[tuple[int, int]]:
        """Tokens that an amount or a unit word at the start of a later utterance makes part of that amount: the
        digits (and a lone word, a digit misheard) said within ``AMOUNT_S`` before it, with nothing else between,
        when they read as the first part of one spoken number ("780 | 6 | Dollars", "70 | $3.", "30 | 2 |
        Minutes"): at most ``AMOUNT_LEAD_DIGITS`` digits, each part fitting into the zeros of the one before. The
        digit groups of a card read before a unit word do not fit."""
        out: set[tuple[int, int]] = set()
        for k, u in enumerate(seq):
            if k == 0 or not _amount_led(u):
                continue
            unit_at = u.start
            lead: list[int] = []  # indices in ``seq`` of the utterances before ``u`` that may begin the amount
            for j in range(k - 1, -1, -1):
                v = seq[j]
                if v.end < unit_at - AMOUNT_S or not (_digits_only(v) or _lone_word(v) is not None):
                    break
                lead.insert(0, j)
            while lead and not (_one_number([(seq[j].text[seq[j].tokens[i].start:seq[j].tokens[i].end],
                                              seq[j].tokens[i].digits) for j in lead for i in _content(seq[j])])
                                and not CallRedactor._reading_on(seq, lead[0])):
                lead.pop(0)  # the earliest part does not begin the amount: try from the next one
            out.update((id(seq[j]), i) for j in lead for i in _content(seq[j]))
        return out

    @staticmethod
    def _misheard(seq: list[_Utt]) -> set[tuple[int, int]]:
        """Words that stand for digits: a number read one digit at a time comes as a chain of short utterances,
        and a recogniser writes some of its digits as other words ("Син", "Мол.", "Четвери" for семь, ноль,
        четыре). A one-word utterance inside such a chain (``CHAIN_MIN`` utterances or more, ``CHAIN_GAP_S``
        apart, ``CHAIN_MIN_DIGITS`` digits heard among them and fewer than twice as many such words, nothing else
        between them) is one digit, unknown."""
        out: set[tuple[int, int]] = set()
        chain: list[tuple[_Utt, int | None]] = []  # (utterance, index of its one word, or None: digits only)

        def close() -> None:
            heard = sum(len(t.digits) for u, k in chain if k is None for t in u.tokens if t.kind == "number")
            words = sum(k is not None for _, k in chain)
            # Mostly digits: a few answers ("Sorry?", "Right.") around two numbers are not a reading.
            if len(chain) >= CHAIN_MIN and heard >= CHAIN_MIN_DIGITS and words < 2 * heard:
                out.update((id(u), k) for u, k in chain if k is not None)
            chain.clear()

        for u in seq:
            if chain and u.start - chain[-1][0].end > CHAIN_GAP_S:
                close()
            word = _lone_word(u)
            if _digits_only(u):
                chain.append((u, None))
            elif word is not None:
                chain.append((u, word))
            else:
                close()
        close()
        return out

    def _judge(self, leg: str, cues: list[tuple[float, str, str]], numbers: dict[str, list[tuple[float, int]]],
               amounts: set[tuple[int, int]]) -> None:
        seq = self._legs[leg]
        last_card_end = -1e9
        heard = self._runs_heard.setdefault(leg, [])
        for whole in self._runs(seq, amounts):
            # The run as a whole, and what follows each pause in it on its own: "order 4601 2809." and then a
            # card number in the next breath is one run of digits, but the order cue was for the first part.
            ordered = False
            for run in [whole, *self._continuations(whole)]:
                # An order number read in pieces is kept whole, and the rest of it after a pause is no new number
                # while what came before is too short to be the whole order number ("order 0 | 7 9 | 3 8 9 2 0");
                # a number after a complete one ("reference 123456." and a card) is judged on its own.
                explained = ordered and len(whole.digits) - len(run.digits) < 6
                tag = self._tag(run, leg, cues, numbers, run.start - last_card_end <= CUE_S, explained)
                if tag is None:
                    ordered = ordered or (run is whole and self._cue_for(whole, leg, cues, numbers) == "order")
                    continue
                if tag == "card" or (tag == "number" and len(run.digits) >= 12):
                    last_card_end = run.end
                members = frozenset((id(u), i) for u, i in run.parts)
                for u, i in run.parts:
                    u.redacted[i], u.run_start[i], u.run_of[i] = tag, run.start, members
                (first_u, first_i), (last_u, last_i) = run.parts[0], run.parts[-1]
                span = (self._span(first_u, first_i, first_i)[0], self._span(last_u, last_i, last_i)[1])
                if span not in heard:
                    heard.append(span)
                break
        for u in seq:
            for i, t in enumerate(u.tokens):
                if t.kind == "email":
                    u.redacted[i] = "email"

    def _tag(self, run: _Run, leg: str, cues: list[tuple[float, str, str]], numbers: dict[str, list[tuple[float, int]]],
             after_card: bool, explained: bool = False) -> str | None:
        first_u, first_i = run.parts[0]
        first = first_u.tokens[first_i]
        cue = self._cue_for(run, leg, cues, numbers)
        if after_card and cue not in ("card", "cvv", "expiry"):
            # A bare short number right after a card number is its expiry or code; "I paid 45" is not.
            after_card = all(t.kind == "number" or (t.kind == "word" and t.word in FILLERS)
                             for u in {id(u): u for u, _ in run.parts}.values() for t in u.tokens)
        return classify(Run(run.digits, run.groups, cue, after_card, first.plus,
                            first.kind == "keep" and first.date_like, explained))

    @staticmethod
    def _continuations(run: _Run) -> list[_Run]:
        out = []
        for k in range(1, len(run.parts)):
            if run.parts[k][0] is not run.parts[k - 1][0]:
                tail = _Run(run.parts[k:])
                for u, i in tail.parts:
                    tail.digits += u.tokens[i].digits or "?"
                    tail.groups += u.tokens[i].groups or (1,)
                out.append(tail)
        return out

    def _cue_for(self, run: _Run, leg: str, cues: list[tuple[float, str, str]],
                 numbers: dict[str, list[tuple[float, int]]]) -> str | None:
        best: tuple[float, str] | None = None
        for time, cat, cue_leg in cues:
            if time > run.start + 1e-6:
                break
            reach = ORDER_CUE_S if cat == "order" else CUE_S
            if cat == "order" and any(time < n < run.start - 1e-6 and u != id(run.parts[0][0])
                                      for n, u in numbers.get(cue_leg, ())):
                continue  # "order number 123": the cue was for that number, not for one said after it
            if run.start - time <= reach and (best is None or time >= best[0]):
                best = (time, cat)
        if best is not None:
            return best[1]
        # "..., that's my card number": a cue just after, on the same leg
        for time, cat, cue_leg in cues:
            if cue_leg == leg and run.end < time <= run.end + 3.0 and cat in SENSITIVE:
                return cat
        return None

    # -- output -------------------------------------------------------------------------------------------

    def _render(self, u: _Utt) -> Redacted:
        blocks = self._blocks(u)
        parts, cursor = [], 0
        for a, b, tag in blocks:
            parts.append(u.text[cursor:u.tokens[a].start])
            parts.append(f"[{tag}]")
            cursor = u.tokens[b].end
        parts.append(u.text[cursor:])
        text = "".join(parts).strip()
        u.shown = text
        tags = tuple(dict.fromkeys(tag for _, _, tag in blocks))
        return Redacted(u.leg, u.start, u.end, text, self._words(u, blocks), tags, self._silence(u, blocks))

    def _blocks(self, u: _Utt) -> list[tuple[int, int, str]]:
        """Token ranges (first, last, tag) to hide, fillers between the digits of one number included."""
        out: list[tuple[int, int, str]] = []
        for i in sorted(u.redacted):
            tag = u.redacted[i]
            if out and out[-1][2] == tag and all(
                    t.kind == "word" and t.word in FILLERS for t in u.tokens[out[-1][1] + 1: i]):
                out[-1] = (out[-1][0], i, tag)
            else:
                out.append((i, i, tag))
        return out

    def _words(self, u: _Utt, blocks: list[tuple[int, int, str]]) -> Words:
        if not blocks or not u.words:
            return u.words
        if u.word_chars is None:
            return ()  # words that cannot be matched to the text could leak what it hides
        spans = [(u.tokens[a].start, u.tokens[b].end, tag) for a, b, tag in blocks]
        out: list[tuple[str, float, float]] = []
        current: int | None = None
        for (cs, ce), (w, s, e) in zip(u.word_chars, u.words, strict=True):
            hit = next((k for k, (a, b, _) in enumerate(spans) if cs < b and ce > a), None)
            if hit is None:
                out.append((w, s, e))
            elif hit == current:
                out[-1] = (out[-1][0], out[-1][1], e)
            else:
                out.append((f"[{spans[hit][2]}]", s, e))
            current = hit
        return tuple(out)

    def _silence(self, u: _Utt, blocks: list[tuple[int, int, str]]) -> tuple[tuple[float, float], ...]:
        if not blocks:
            return ()
        if u.word_chars is None:
            return ((u.start, u.end),)  # no word timings: the whole utterance
        return tuple(self._span(u, a, b) for a, b, _ in blocks)

    @staticmethod
    def _span(u: _Utt, a: int, b: int) -> tuple[float, float]:
        """The audio of tokens ``a``..``b`` of ``u``: from the end of the word before to the start of the word
        after (the utterance's edge where there is none), so at least ``SILENCE_PAD_S`` beyond their timings.
        The timings of digits said fast are the least reliable, and the gap between words holds nothing anyone
        needs."""
        if u.word_chars is None:
            return (u.start, u.end)
        ca, cb = u.tokens[a].start, u.tokens[b].end
        timed = list(zip(u.word_chars, u.words, strict=True))
        inside = [(s, e) for (cs, ce), (_, s, e) in timed if cs < cb and ce > ca]
        before = [e for (cs, ce), (_, s, e) in timed if ce <= ca]
        after = [s for (cs, ce), (_, s, e) in timed if cs >= cb]
        s0 = min(s for s, _ in inside) if inside else u.start
        e0 = max(e for _, e in inside) if inside else u.end
        start = min(max(before), s0 - SILENCE_PAD_S) if before else u.start
        end = max(min(after), e0 + SILENCE_PAD_S) if after else u.end
        return (max(start, u.start - SILENCE_PAD_S), min(end, u.end + SILENCE_PAD_S))
