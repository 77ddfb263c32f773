"""Cue phrases in transcripts: what the customer signals and how the agent responds.

Patterns are regular expressions over lower-cased text with ``ё`` folded to ``е``. Russian patterns
match word stems (``раздраж\\w*``) because the same cue appears in many inflected forms. Each category
belongs to one leg: a frustration cue from the agent ("I know it's frustrating") is not the customer's
frustration. ``find_cues`` reports at most one cue per category per text, the earliest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.textnorm import fold, match_words

CUSTOMER = "customer"
AGENT = "agent"

_EN: dict[str, list[str]] = {
    "frustration": [
        r"frustrat\w*",
        r"ridiculous",
        r"unacceptable",
        r"outrageous",
        r"unbelievable",
        r"pathetic",
        r"fed up",
        r"sick (?:and tired )?of",
        r"annoy\w*",
        r"(?:so |really |very )?(?:angry|upset|furious)",
        r"waste of (?:my )?time",
        r"how many times",
        r"(?:second|third|fourth|fifth|\w+th) time",
        r"(?:been|was) (?:waiting|on hold) (?:for )?(?:over |more than )?(?:an? |\w+ )?(?:hours?|minutes|days|weeks)",
        r"nobody (?:is )?(?:help\w*|listen\w*|cares)",
        r"are you (?:even )?listening",
        r"useless",
        r"this is (?:a )?(?:joke|nonsense|absurd|insane|terrible|awful)",
        r"i can'?t believe",
        r"(?:not|never) (?:been )?(?:happy|satisfied)",
        r"disappoint\w*",
        r"worst",
    ],
    "manager_request": [
        r"(?:speak|talk|transfer|connect|put|get|escalate)\w*\b(?:\W+\w+){0,4}?\W+"
        r"(?:manager|supervisor|superior|boss|someone (?:higher up|in charge|senior))",
        r"(?:your|a|the) (?:manager|supervisor|superior)",
        r"escalat\w*",
        r"someone in charge",
    ],
    "churn_threat": [
        r"cancel\w*",
        r"unsubscrib\w*",
        r"terminat\w* (?:my|the|our|this) (?:account|contract|service|plan)",
        r"close (?:my|the|our) account",
        r"switch\w* (?:to|providers|companies|carriers|banks)",
        r"(?:take|move) (?:my|our) business elsewhere",
        r"(?:another|different|other) "
        r"(?:provider|company|carrier|bank|operator|service)",
        r"competitor\w*",
        r"(?:i'?m|i am|we'?re|we are) (?:leaving|done with you)",
        r"port (?:out )?my number",
        r"never (?:use|buy|order|come back)\w*",
    ],
    "empathy": [
        r"i (?:completely |totally |fully )?understand",
        r"i can (?:see|imagine|hear|understand) (?:how|why|that)",
        r"(?:that|this|it) (?:must be|sounds|is) (?:really |very |so )?"
        r"(?:frustrating|difficult|hard|annoying|stressful|upsetting|awful|terrible)",
        r"i know how (?:frustrating|annoying|difficult|hard)",
        r"i (?:would|'d) (?:feel|be) the same",
        r"i hear you",
        r"i'?m here to help",
        r"that'?s (?:not )?(?:okay|fair|right) (?:that|for you)",
    ],
    "apology": [
        r"(?:i'?m|i am|we'?re|we are) (?:so |very |really |truly |terribly |deeply )?sorry",
        r"(?:my|our|sincere) apologies",
        r"(?:i|we) (?:do |sincerely )?apologi[sz]e",
        r"sorry (?:about|for)",
    ],
    "acknowledgement": [
        r"i see",
        r"got it",
        r"understood",
        r"(?:that|this) makes sense",
        r"noted",
        r"thank(?:s| you) for (?:letting me know|explaining|clarifying|your patience|waiting|telling me)",
        r"let me (?:check|look|see|find|pull up|take a look)",
        r"i(?:'ll| will) (?:look into|check|take care|sort)",
    ],
}

_RU: dict[str, list[str]] = {
    "frustration": [
        r"раздраж\w*",
        r"возмут\w*",
        r"возмущ\w*",
        r"безобрази\w*",
        r"надоел\w*",
        r"достал\w*",
        r"сколько (?:можно|раз|еще|можно ждать)",
        r"(?:второй|третий|пятый|десятый|который) раз",
        r"ужасн\w*",
        r"кошмар\w*",
        r"издева\w*",
        r"бесит\w*",
        r"бесят",
        r"бешен\w*",
        r"недовол\w*",
        r"хамств\w*",
        r"бардак\w*",
        r"разочаров\w*",
        r"отвратительн\w*",
        r"позор\w*",
        r"безобразн\w*",
        r"невозможно (?:дозвониться|работать|так)",
        r"никто не (?:помога\w*|отвеча\w*|мож\w*|слыш\w*)",
        r"(?:вы )?(?:меня )?не слыши\w*",
        r"(?:жду|ждал\w*|ждем|ждём) уже",
        r"сколько (?:еще|ещё) ждать",
        r"издевательств\w*",
        r"бред\w*",
        r"абсурд\w*",
    ],
    "manager_request": [
        r"менеджер\w*",
        r"руководител\w*",
        r"руководств\w*",
        r"начальств\w*",
        r"начальник\w*",
        r"вышестоящ\w*",
        r"старш\w+ (?:смены|оператор\w*|специалист\w*)",
        r"жалоб\w*",
    ],
    "churn_threat": [
        r"отмен\w*",
        r"расторг\w*",
        r"расторж\w*",
        r"отказ\w* от (?:ваш\w*|услуг\w*|договор\w*|подписк\w*)",
        r"отключ\w* (?:меня|услуг\w*|подписк\w*|от ваш\w*)",
        r"конкурент\w*",
        r"(?:уйд\w*|ухож\w*|уходим|перейд\w*|перехож\w*) (?:к|в|на) (?:друг\w*|конкурент\w*)",
        r"(?:закр\w*|закрыть) (?:мой |свой |наш )?(?:сч[её]т|договор|аккаунт)",
        r"друг\w* (?:оператор\w*|банк\w*|провайдер\w*|компани\w*)",
        r"больше не (?:буду|стану|будем) (?:пользоваться|покупать|обращаться)",
    ],
    "empathy": [
        r"понима(?:ю|ем)",
        r"сочувств\w*",
        r"сопережива\w*",
        r"представля(?:ю|ем),? (?:как|насколько)",
        r"(?:это|наверное) (?:очень |действительно )?(?:неприятн\w*|обидн\w*|тяжел\w*|сложн\w*)",
        r"на вашем месте",
        r"(?:мы |я )?обязательно (?:помож\w*|поможем|реш\w*|разбер\w*)",
    ],
    "apology": [
        r"извин\w*",
        r"прост\w+,? (?:пожалуйста|за|нас|меня)",
        r"прощени\w*",
        r"сожале\w*",
        r"виноват\w*",
    ],
    "acknowledgement": [
        r"понятно",
        r"понял\w*",
        r"ясно",
        r"принял\w*",
        r"записал\w*",
        r"зафиксир\w*",
        r"спасибо за (?:информаци\w*|ожидани\w*|терпени\w*|уточнени\w*)",
        r"(?:сейчас|давайте) (?:провер\w*|посмотр\w*|уточн\w*|разбер\w*)",
    ],
}

LEG_CATEGORIES: dict[str, tuple[str, ...]] = {
    CUSTOMER: ("frustration", "manager_request", "churn_threat"),
    AGENT: ("empathy", "apology", "acknowledgement"),
}


def _compile(patterns: dict[str, list[str]]) -> dict[str, re.Pattern[str]]:
    return {
        category: re.compile(r"(?<!\w)(?:" + "|".join(f"(?:{p})" for p in items) + r")(?!\w)")
        for category, items in patterns.items()
    }


_PATTERNS = {"en": _compile(_EN), "ru": _compile(_RU)}


@dataclass(frozen=True, slots=True)
class Cue:
    category: str
    text: str
    """The words that matched, as they appear (lower-cased) in the transcript."""
    start: int
    """Character offset of the match in the text."""




def find_cues(text: str, leg: str, language: str | None = None) -> list[Cue]:
    """Cue phrases of ``leg``'s categories; ``language`` None or unknown tries English and Russian."""
    categories = LEG_CATEGORIES.get(leg, ())
    languages = [language] if language in _PATTERNS else list(_PATTERNS)
    folded = fold(text)
    found: list[Cue] = []
    for category in categories:
        best: re.Match[str] | None = None
        for lang in languages:
            match = _PATTERNS[str(lang)][category].search(folded)
            if match and (best is None or match.start() < best.start()):
                best = match
        if best is not None:
            found.append(Cue(category, best.group(), best.start()))
    return sorted(found, key=lambda c: c.start)


_BACKCHANNELS = {
    "en": {
        "ok",
        "okay",
        "kay",
        "mm",
        "mmm",
        "hm",
        "hmm",
        "mhm",
        "mmhm",
        "mmhmm",
        "uhhuh",
        "uhhum",
        "uhuh",
        "yeah",
        "yep",
        "yes",
        "yup",
        "ya",
        "right",
        "sure",
        "alright",
        "all right",
        "i see",
        "got it",
        "exactly",
        "true",
        "oh",
        "ah",
        "aha",
        "wow",
        "really",
        "of course",
        "cool",
        "fine",
        "great",
        "oh okay",
        "i know",
        "that's right",
        "sounds good",
        "go on",
        "uh",
        "um",
        "yeah yeah",
        "unhuh",
        "mhmm",
        "huh uh",
        "ha",
        "heh",
        "oh wow",
        "oh right",
        "oh yeah",
        "oh i see",
        "perfect",
        "wonderful",
        "awesome",
        "absolutely",
        "definitely",
        "gotcha",
        "okay great",
        "thank you",
        "thanks",
    },
    "ru": {
        "ага",
        "угу",
        "да",
        "ну да",
        "понятно",
        "хорошо",
        "так",
        "ясно",
        "ладно",
        "конечно",
        "ок",
        "окей",
        "ну",
        "мгм",
        "мм",
        "хм",
        "дада",
        "вот",
        "понял",
        "поняла",
        "ой",
        "правильно",
        "точно",
        "ну ну",
        "ага ага",
        "так так",
        "верно",
        "да да",
        "угу угу",
        "а",
        "ааа",
        "ну понятно",
        "ну хорошо",
        "ага понятно",
        "да понятно",
        "да конечно",
        "отлично",
        "спасибо",
        "ха",
        "хе",
    },
}
_BACKCHANNEL_MAX_WORDS = 4


def is_backchannel(text: str, language: str | None = None) -> bool:
    """Whether the whole text is a listener response ("mm-hm", "угу", "okay, right").

    Empty text counts as a backchannel: the recogniser returns nothing for a short murmur or a
    withheld decode, and that must not turn an acoustic "short overlap" into an interruption.
    """
    words = match_words(text)
    if not words:
        return True
    if len(words) > _BACKCHANNEL_MAX_WORDS:
        return False
    languages = [language] if language in _BACKCHANNELS else list(_BACKCHANNELS)
    phrases = {phrase for lang in languages for phrase in _BACKCHANNELS[str(lang)]}
    phrases |= {p.replace(" ", "") for p in phrases}  # "uh huh" and "uhhuh" alike
    words = [w if w in phrases else _unrepeat(w) for w in words]
    i = 0
    while i < len(words):
        # Longest phrase first, so "all right" is one phrase and not "all" + "right".
        for size in (3, 2, 1):
            piece = words[i : i + size]
            if " ".join(piece) in phrases or "".join(piece) in phrases:
                i += size
                break
        else:
            return False
    return True


def _unrepeat(word: str) -> str:
    """A reduplicated token as its unit: "дада" -> "да", "hahaha" -> "ha", "yeahyeah" -> "yeah"."""
    for size in range(1, len(word) // 2 + 1):
        unit = word[:size]
        if len(word) % size == 0 and unit * (len(word) // size) == word:
            return unit
    return word


REPEAT_MAX_WORDS = 4


def repeats(text: str, heard: str) -> bool:
    """Whether ``text`` only says back words of ``heard`` (the other speaker's recent words): "2019." after
    "it's a 2019 Tesla", "Fittilly?" after the customer spelled it. Saying a detail back while the other talks
    shows they are being followed; it does not take the floor."""
    words = match_words(text)
    if not words or len(words) > REPEAT_MAX_WORDS:
        return False
    said = set(match_words(heard))
    return all(w in said or is_backchannel(w) for w in words) and any(w in said for w in words)
