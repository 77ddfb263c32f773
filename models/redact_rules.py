"""What a number is, judged from its digits, how it was grouped, and the cue words said near it.

Cue words are matched loosely (a recogniser hears "card" as "cart", "паспорт" as "паспорте"), because the words
around a number are the best evidence of what it is and the most likely to be misheard.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

CUES: dict[str, str] = {
    # payment card
    "card": "card", "cards": "card", "credit": "card", "debit": "card", "visa": "card", "mastercard": "card",
    "amex": "card", "maestro": "card", "discover": "card", "pan": "card", "cardholder": "card",
    "карта": "card", "карты": "card", "карту": "card", "картой": "card", "карте": "card", "карточка": "card",
    "карточки": "card", "карточку": "card", "кредитка": "card", "кредитки": "card", "кредитную": "card",
    "кредитной": "card", "дебетовой": "card", "дебетовую": "card", "виза": "card", "мастеркард": "card",
    # expiry
    "expiry": "expiry", "expiration": "expiry", "expires": "expiry", "expire": "expiry", "exp": "expiry",
    "valid": "expiry", "thru": "expiry", "срок": "expiry", "действия": "expiry", "истекает": "expiry",
    "годна": "expiry",
    # card security code
    "cvv": "cvv", "cvc": "cvv", "cv2": "cvv", "cvv2": "cvv", "cvc2": "cvv", "cid": "cvv", "csc": "cvv",
    "security": "cvv", "verification": "cvv", "безопасности": "cvv", "оборотной": "cvv", "обороте": "cvv",
    "cvv-код": "cvv", "cvc-код": "cvv", "свв": "cvv", "сививи": "cvv", "digits": "cvv", "цифры": "cvv",
    # US social security number
    "social": "ssn", "ssn": "ssn",
    # identity documents and tax numbers
    "passport": "id", "license": "id", "licence": "id", "паспорт": "id", "паспорта": "id", "паспорте": "id",
    "серия": "id", "серии": "id", "инн": "id", "снилс": "id", "полис": "id", "полиса": "id", "тин": "id",
    "identification": "id", "nin": "id", "itin": "id",
    # bank accounts, PINs
    "account": "account", "routing": "account", "iban": "account", "счёт": "account",
    "счет": "account", "счёта": "account", "счета": "account", "бик": "account", "pin": "pin", "пин": "pin",
    "пин-код": "pin", "пинкод": "pin", "password": "pin", "passcode": "pin", "пароль": "pin", "кодовое": "pin",
    # phone numbers
    "phone": "phone", "telephone": "phone", "mobile": "phone", "cell": "phone", "телефон": "phone",
    "телефона": "phone", "мобильный": "phone", "мобильного": "phone", "сотовый": "phone",
    # numbers users need to see
    "order": "order", "orders": "order", "заказ": "order", "заказа": "order", "заказе": "order",
    "reference": "order", "confirmation": "order", "tracking": "order", "ticket": "order", "invoice": "order",
    "receipt": "order", "booking": "order", "reservation": "order",
    "трек": "order", "заявка": "order", "заявки": "order", "обращения": "order", "накладной": "order",
    "квитанции": "order", "бронирования": "order", "чек": "order", "чека": "order", "посылки": "order",
}
_TWO_WORD = {("id", "number"): "id", ("date", "of"): "id", ("tax", "id"): "id", ("national", "id"): "id",
             ("long", "number"): "card", ("sixteen", "digit"): "card", ("security", "number"): "ssn",
             ("social", "security"): "ssn", ("pin", "code"): "pin", ("три", "цифры"): "cvv",
             ("three", "digits"): "cvv", ("back", "of"): "cvv"}
SENSITIVE = frozenset({"card", "expiry", "cvv", "ssn", "id", "account", "pin", "phone"})
_FUZZY_MIN = 4
_CUE_LIST = tuple(w for w in CUES if len(w) >= _FUZZY_MIN)
_MISHEARD = {"car": "card", "cart": "card", "cord": "card", "cvb": "cvv", "cbb": "cvv", "cbv": "cvv",
             "cvs": "cvv", "ccv": "cvv", "sbb": "cvv", "sivivi": "cvv", "socia": "ssn", "soshal": "ssn",
             "sochial": "ssn", "ss": "ssn"}


def _distance(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


@lru_cache(maxsize=8192)
def cue_of(word: str) -> str | None:
    """The cue category of one word, allowing for a recogniser's slips: a letter or two off, another ending."""
    if word in CUES:
        return CUES[word]
    if word in _MISHEARD:
        return _MISHEARD[word]
    if len(word) < _FUZZY_MIN:
        return None
    for stem, cat in (("паспорт", "id"), ("карт", "card"), ("кредитн", "card"), ("телефон", "phone"),
                      ("заказ", "order"), ("безопасн", "cvv")):
        if word.startswith(stem):
            return cat
    best: tuple[int, str] | None = None
    limit = 1 if len(word) < 8 else 2
    for cue in _CUE_LIST:
        if cue[0] != word[0] and len(word) < 8:
            continue  # short words: the first sound is rarely the one misheard, and "care"/"hard" are not "card"
        d = _distance(word, cue, limit)
        if d <= limit and (best is None or d < best[0]):
            best = (d, cue)
    return CUES[best[1]] if best else None


def two_word_cue(a: str, b: str) -> str | None:
    return _TWO_WORD.get((a, b))


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Run:
    """A number as assembled across utterances, with what was said near it."""

    digits: str
    groups: tuple[int, ...]
    cue: str | None = None
    """The category of the nearest cue before it (or just after it, when there is none before)."""
    after_card: bool = False
    """A card number was read shortly before: a short number now is likely its expiry or CVV."""
    plus: bool = False
    date_like: bool = False
    explained: bool = False
    """Part of a longer number that a word before it explained ("order number ..."): only evidence of its own
    (Luhn, a cue, a shape) makes it sensitive, not its length."""


def _ssn_shaped(groups: tuple[int, ...]) -> bool:
    # 3-2-4, also with a digit lost or repeated in the last group by the recogniser
    return any(groups[i:i + 2] == (3, 2) and i + 2 < len(groups) and 3 <= groups[i + 2] <= 5
               for i in range(len(groups))) and 8 <= sum(groups) <= 10


def _phone_shaped(groups: tuple[int, ...]) -> bool:
    return groups in ((3, 3, 4), (1, 3, 3, 4), (3, 3, 2, 2), (1, 3, 3, 2, 2), (3, 2, 2), (3, 4))


def classify(run: Run) -> str | None:
    """The tag a run is redacted under, or None to keep it in the clear."""
    n = len(run.digits)
    cue = run.cue
    # "?" stands for a digit the recogniser wrote as some other word ("Син" for "семь"): no checksum then.
    card_like = 13 <= n <= 19 and "?" not in run.digits and luhn_ok(run.digits)
    if run.date_like:  # MM/YY, MM/YYYY: an expiry date when said as one; any other date is kept
        expiry = cue == "expiry" or (run.after_card and cue in ("card", "cvv"))
        return "expiry" if expiry and n <= 6 else None
    if cue == "order" and not card_like:
        return None  # order, tracking and ticket numbers are what callers and agents need to read back
    if card_like:
        return "card"
    if cue == "card" and n >= 6:
        return "card"  # 12+ digits next to "card" that fail Luhn are a card misheard; 6+ are a piece of one
    if cue == "expiry" and 3 <= n <= 6:
        return "expiry"
    if cue == "cvv" and 3 <= n <= 4:
        return "cvv"
    if run.after_card and 3 <= n <= 4 and cue in ("card", "cvv", "expiry", None):
        return "cvv" if n == 3 else "expiry"
    if cue == "pin" and 4 <= n <= 8:
        return "pin"
    if cue == "ssn" and n >= 4:
        return "ssn"
    if _ssn_shaped(run.groups):
        return "ssn"
    if cue in ("id", "account") and n >= 4:
        return str(cue)
    if cue == "cvv" and n >= 5:
        return "card"
    if (cue == "phone" and n >= 7) or (run.plus and 10 <= n <= 15) or (7 <= n <= 11 and _phone_shaped(run.groups)):
        return "phone"
    if n >= 6 and not run.explained:
        # A long number nobody explained is more likely an account, card or document than anything a caller
        # needs on screen; the numbers they do need (orders, tickets) come with a word that says so.
        return "phone" if n in (10, 11) else "number"
    return None
