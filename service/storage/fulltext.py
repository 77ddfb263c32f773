"""Full-text search over redacted transcript lines, the same on both databases.

PostgreSQL indexes each line with ``to_tsvector`` in the line's language ('english', 'russian', else 'simple'),
its Snowball stemmers and stop words. SQLite's FTS5 has an English (Porter) stemmer only, so the SQLite store
indexes each line's *stems*: Russian words go through the Snowball Russian algorithm here (``stem_ru``, checked
against PostgreSQL's in the tests), English ones through FTS5's ``porter`` tokenizer, and the stop words
PostgreSQL drops are dropped here too. A query is all its words, stemmed the same way, in one line.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")

# PostgreSQL 15's english.stop and russian.stop (tsearch_data), which its configurations drop from text and queries.
STOP_EN = frozenset("""i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that these those am is are
was were be been being have has had having do does did doing a an the and but if or because as until while of at by
for with about against between into through during before after above below to from up down in out on off over under
again further then once here there when where why how all any both each few more most other some such no nor not only
own same so than too very s t can will just don should now""".split())
STOP_RU = frozenset("""и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне
было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж
вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз
тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее
сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про
всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более
всегда конечно всю между""".split())

# -- the Snowball Russian stemmer (snowballstem.org/algorithms/russian/stemmer.html) -------------------------------

_VOWELS = set("аеиоуыэюя")
_GERUND_1 = ("вшись", "вши", "в")  # after а or я
_GERUND_2 = ("ившись", "ывшись", "ивши", "ывши", "ив", "ыв")
_ADJECTIVE = ("ими", "ыми", "его", "ого", "ему", "ому", "ее", "ие", "ые", "ое", "ей", "ий", "ый", "ой", "ем", "им",
              "ым", "ом", "их", "ых", "ую", "юю", "ая", "яя", "ою", "ею")
_PARTICIPLE_1 = ("ем", "нн", "вш", "ющ", "щ")  # after а or я
_PARTICIPLE_2 = ("ивш", "ывш", "ующ")
_REFLEXIVE = ("ся", "сь")
_VERB_1 = ("ете", "йте", "ешь", "нно", "ла", "на", "ли", "ем", "ло", "но", "ет", "ют", "ны", "ть", "й", "л", "н")
_VERB_2 = ("ейте", "уйте", "ила", "ыла", "ена", "ите", "или", "ыли", "ило", "ыло", "ено", "ует", "уют", "ены", "ить",
           "ыть", "ишь", "ей", "уй", "ил", "ыл", "им", "ым", "ен", "ят", "ит", "ыт", "ую", "ю")
_NOUN = ("иями", "ями", "ами", "ией", "иям", "ием", "иях", "ев", "ов", "ие", "ье", "еи", "ии", "ей", "ой", "ий", "ям",
         "ем", "ам", "ом", "ах", "ях", "ию", "ью", "ия", "ья", "а", "е", "и", "й", "о", "у", "ы", "ь", "ю", "я")
_SUPERLATIVE = ("ейше", "ейш")
_DERIVATIONAL = ("ость", "ост")


def _longest(word: str, rv: int, endings: tuple[str, ...], after_a: bool = False) -> str | None:
    """The longest of ``endings`` that ``word`` ends with inside RV (``after_a``: and that follows а or я, also in
    RV, which stays)."""
    best: str | None = None
    for e in endings:
        if word.endswith(e) and len(word) - len(e) >= rv and (best is None or len(e) > len(best)):
            if after_a and not (len(word) - len(e) - 1 >= rv and word[-len(e) - 1] in "ая"):
                continue
            best = e
    return best


def _strip(word: str, rv: int, group1: tuple[str, ...], group2: tuple[str, ...]) -> str | None:
    """``word`` less the longest ending of either group (group 1 only after а/я); None when neither ends it."""
    e1, e2 = _longest(word, rv, group1, after_a=True), _longest(word, rv, group2)
    e = max((x for x in (e1, e2) if x is not None), key=len, default=None)
    return None if e is None else word[: len(word) - len(e)]


def _regions(word: str) -> tuple[int, int]:
    """RV (after the first vowel) and R2 (R1 of R1; R1: after the first non-vowel that follows a vowel)."""
    rv = next((i + 1 for i, c in enumerate(word) if c in _VOWELS), len(word))

    def r1_from(start: int) -> int:
        for i in range(start + 1, len(word)):
            if word[i] not in _VOWELS and word[i - 1] in _VOWELS:
                return i + 1
        return len(word)

    r1 = r1_from(0)
    return rv, r1_from(r1)


def stem_ru(word: str) -> str:
    """The Snowball Russian stem of one lower-case word."""
    word = word.replace("ё", "е")
    rv, r2 = _regions(word)
    # Step 1
    done = _strip(word, rv, _GERUND_1, _GERUND_2)
    if done is not None:
        word = done
    else:
        refl = _longest(word, rv, _REFLEXIVE)
        if refl:
            word = word[: -len(refl)]
        adj = _longest(word, rv, _ADJECTIVE)
        if adj:
            word = word[: -len(adj)]
            part = _strip(word, rv, _PARTICIPLE_1, _PARTICIPLE_2)
            if part is not None:
                word = part
        else:
            verb = _strip(word, rv, _VERB_1, _VERB_2)
            if verb is not None:
                word = verb
            else:
                noun = _longest(word, rv, _NOUN)
                if noun:
                    word = word[: -len(noun)]
    # Step 2
    if word.endswith("и") and len(word) - 1 >= rv:
        word = word[:-1]
    # Step 3
    der = _longest(word, max(rv, r2), _DERIVATIONAL)
    if der:
        word = word[: -len(der)]
    # Step 4
    if word.endswith("нн") and len(word) - 2 >= rv:
        return word[:-1]
    sup = _longest(word, rv, _SUPERLATIVE)
    if sup:
        word = word[: -len(sup)]
        if word.endswith("нн") and len(word) - 2 >= rv:
            word = word[:-1]
        return word
    if word.endswith("ь") and len(word) - 1 >= rv:
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """``text``'s words as the SQLite index holds them: lower case, stop words dropped, Russian ones stemmed
    (FTS5's porter tokenizer stems the rest)."""
    out = []
    for w in WORD.findall(text.lower()):
        if w in STOP_EN or w in STOP_RU:
            continue
        out.append(stem_ru(w) if _CYRILLIC.search(w) else w)
    return out


def indexed(text: str) -> str:
    """A line as the SQLite full-text table stores it."""
    return " ".join(terms(text))


def fts5_query(q: str) -> str | None:
    """An FTS5 query that matches lines holding every word of ``q`` (None when ``q`` has no word but stop words)."""
    words = terms(q)
    if not words:
        return None
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)
