from __future__ import annotations

import pytest

from models.redact import luhn_ok, redact, redact_transcript
from models.transcriber import Transcript, Word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My card is 4532 0151 1283 0366, thanks", "My card is [card], thanks"),
        ("card 4532-0151-1283-0366.", "card [card]."),
        ("it's 4111111111111111", "it's [card]"),
        ("amex 3782 822463 10005 ok", "amex [card] ok"),
        ("four five three two zero one five one one two eight three zero three six six", "[card]"),
        ("четыре пять три два ноль один пять один один два восемь три ноль три шесть шесть", "[card]"),
        ("the CVV is 123", "the CVV is [cvv]"),
        ("security code is four five six", "security code is [cvv]"),
        ("код безопасности 321", "код безопасности [cvv]"),
        ("ssn 123-45-6789", "ssn [ssn]"),
        ("my social security number is 123456789", "my social security number is [ssn]"),
        ("снилс 112-233-445 95", "снилс [id]"),
        ("паспорт серия 45 06 номер 123456", "паспорт серия [id] номер [id]"),
        ("call me at +1 (555) 123-4567 please", "call me at [phone] please"),
        ("my number is 555-123-4567", "my number is [phone]"),
        ("номер 8 900 123-45-67", "номер [phone]"),
        ("звоните +7 912 345 67 89", "звоните [phone]"),
        ("mail me at john.doe+x@example.co.uk.", "mail me at [email]."),
        ("пишите на ivan_petrov@mail.ru", "пишите на [email]"),
    ],
)
def test_sensitive_data_is_replaced_by_tags(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I waited 45 minutes",
        "order number 1234 5678 1234 5678",  # 16 digits, fails Luhn
        "tracking 4532015112830367",  # one digit off a valid card
        "in 2019 we had 3 issues",
        "press one two three",
        "it costs 129 dollars",
        "room 1234",
        "we have one two three options",
        "я жду уже 40 минут",
        "it was 7 hundred 80 6 dollars",
        "Seven hundred and eighty six dollars",
        "итого 50, 2 долларов",
        "в 10, 45 после полудня",
        "Сорок, минут!",
        "I waited 40, minutes",
        "",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert redact(text) == text


def test_luhn() -> None:
    assert luhn_ok("4532015112830366")
    assert not luhn_ok("4532015112830367")
    assert luhn_ok("79927398713")


def test_transcript_words_are_redacted_with_the_text() -> None:
    digits = "4532 0151 1283 0366".split()
    words = (
        (Word("card", 0.0, 0.4, 0.9),)
        + tuple(Word(d, 1.0 + i, 1.5 + i, 0.8) for i, d in enumerate(digits))
        + (Word("thanks", 6.0, 6.3, 0.9),)
    )
    t = Transcript("card 4532 0151 1283 0366 thanks", "en", words)
    r = redact_transcript(t)
    assert r.text == "card [card] thanks"
    assert [w.word for w in r.words] == ["card", "[card]", "thanks"]
    assert (r.words[1].start, r.words[1].end) == (1.0, 4.5)
    assert not any(d in " ".join(w.word for w in r.words) for d in digits)
