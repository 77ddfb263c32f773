"""Redaction with call memory: numbers read across utterances, misheard digits and cue words."""

from __future__ import annotations

import re

import pytest

from models.redact_call import RUN_GAP_S, CallRedactor
from models.spoken_numbers import compose


def read(utterances: list[str], leg: str = "customer", pause: float = 0.6,
         r: CallRedactor | None = None) -> dict[float, str]:
    """What ends up shown for each utterance, revisions applied; utterances 1 s long, ``pause`` apart."""
    r = r or CallRedactor()
    shown: dict[float, str] = {}
    t = 0.0
    for text in utterances:
        u = r.add(leg, t, t + 1.0, text)
        shown[t] = u.utterance.text
        for v in u.revised:
            assert v.leg == leg and v.start in shown
            shown[v.start] = v.text
        t += 1.0 + pause
    return shown


def digits_left(shown: dict[float, str]) -> int:
    return len(re.sub(r"\D", "", " ".join(shown.values())))


def test_a_card_read_digit_by_digit_over_fifteen_utterances_is_retracted() -> None:
    shown = read(["4, 1."] + ["One."] * 14)
    assert digits_left(shown) == 0
    assert all(text == "[card]." for text in shown.values())


def test_a_card_read_in_groups_with_pauses() -> None:
    assert digits_left(read(["5, 4, 5, 4"] * 4, pause=2.0)) == 0


def test_a_card_missing_a_group_is_redacted_after_a_card_cue() -> None:
    assert read(["My card number is 4111111111111."]) == {0.0: "My card number is [card]."}


def test_a_social_security_number_is_found_by_its_shape_when_the_cue_is_misheard() -> None:
    assert read(["My total is 1-2-3 4-5 6-8-9"]) == {0.0: "My total is [ssn]"}


def test_a_misheard_card_cue_still_counts() -> None:
    # 12 digits failing Luhn: only the cue says what it is, and it was heard as "cart"
    assert digits_left(read(["my cart number is", "4532 0151 1283"])) == 0


def test_the_cue_may_come_from_the_other_leg() -> None:
    r = CallRedactor()
    r.add("agent", 0.0, 2.0, "Can I have the long number on your card?")
    assert digits_left(read(["4532 0151", "1283 03"], r=r)) == 0


def test_spoken_and_russian_numerals() -> None:
    assert compose("fifty four fifty four".split()) == ["54", "54"]
    assert compose("double five one".split()) == ["55", "1"]
    assert compose("сто двадцать три".split()) == ["123"]
    shown = read(["номер карты", "пятьдесят четыре пятьдесят четыре", "сорок один одиннадцать",
                  "двенадцать тридцать четыре", "ноль ноль ноль один"])
    assert list(shown.values())[1:] == ["[card]"] * 4


def test_numbers_said_far_apart_are_not_one_number() -> None:
    shown = read(["4111 1", "111 11"], pause=RUN_GAP_S + 1)
    assert digits_left(shown) == 10
    assert digits_left(read(["4111 1", "111 11"], pause=RUN_GAP_S - 1)) == 0  # ten digits together: a phone


@pytest.mark.parametrize("utterances", [
    ["Your total is $45.99.", "The order number is 12345678."],
    ["It will arrive on March 3rd, 2024 at 3:30 pm."],
    ["That's 129 dollars and 50 cents, and it took 45 minutes."],
    ["Заказ номер 48213377, сумма 1 250 рублей."],
    ["Tracking number 1Z 999 AA1 0123 4567 84"],
    ["Ваш номер заказа", "4 8 2 1 3 3 7 7 5 1"],
    ["Перезвоните в 7-30 после полудня."],
])
def test_amounts_dates_times_and_order_numbers_stay(utterances: list[str]) -> None:
    shown = read(utterances)
    assert list(shown.values()) == [u.strip() for u in utterances]


def test_a_sensitive_number_stays_hidden_whatever_is_said_after_it() -> None:
    r = CallRedactor()
    read(["card number 4111 1111 1111 1111"], r=r)
    later = r.add("customer", 3.0, 4.0, "order 5")
    assert all("[card]" in v.text for v in later.revised) and "4111" not in later.utterance.text


def test_pending_while_the_number_may_go_on() -> None:
    r = CallRedactor()
    r.add("customer", 0.0, 1.0, "my card is 4111")
    assert r.pending("customer", 0.0, now=2.0)
    assert not r.pending("customer", 0.0, now=1.0 + RUN_GAP_S)
    r.add("customer", 2.0, 3.0, "sorry, never mind")
    assert not r.pending("customer", 0.0, now=3.5)


def test_audio_spans_cover_the_redacted_words() -> None:
    r = CallRedactor()
    words = (("My", 0.0, 0.2), ("card", 0.2, 0.5), ("is", 0.5, 0.7), ("4111", 1.0, 1.6), ("1111", 1.8, 2.4),
             ("1111", 2.6, 3.2), ("1111.", 3.4, 4.0), ("Thanks", 4.5, 5.0))
    u = r.add("customer", 0.0, 5.2, "My card is 4111 1111 1111 1111. Thanks", words).utterance
    assert u.text == "My card is [card]. Thanks"
    assert [w for w, _, _ in u.words] == ["My", "card", "is", "[card]", "Thanks"]
    (start, end), = u.silence
    assert start <= 0.85 and 4.0 <= end <= 4.5


def silenced(spans: list[tuple[float, float]], a: float, b: float) -> bool:
    """Whether the union of ``spans`` covers ``a``..``b``."""
    at = a
    for s, e in sorted(spans):
        if s <= at < e:
            at = e
    return at >= b


def timed(start: float, text: str, step: float = 0.5) -> tuple[str, tuple[tuple[str, float, float], ...]]:
    return text, tuple((w, start + i * step, start + i * step + 0.4) for i, w in enumerate(text.split()))


def test_the_recording_is_silenced_from_the_first_digit_of_a_run_to_its_last_across_utterances() -> None:
    # A card read in groups, cut into utterances by the pauses between them; the recogniser's word timings
    # cover the digits it wrote down, not the pauses between the utterances or a group it dropped there.
    r = CallRedactor()
    spans: list[tuple[float, float]] = []
    for start, text in [(1.0, "4111 1111"), (4.0, "1111 1111")]:
        text, words = timed(start, text)
        u = r.add("customer", start, start + 1.0, text, words)
        spans += [*u.utterance.silence, *(s for v in u.revised for s in v.silence)]
    assert silenced(spans, 1.0, 4.9)


def test_a_digit_heard_as_another_word_between_sensitive_runs_is_silenced() -> None:
    # The Russian "четыре" heard as "Чупири" splits a card from its code: in the text both are hidden, and the
    # word between them is as audible as the digits around it.
    r = CallRedactor()
    spans: list[tuple[float, float]] = []
    for start, text in [(1.0, "2200 3740"), (4.0, "6812,"), (6.0, "Чупири 158 868.")]:
        text, words = timed(start, text)
        u = r.add("customer", start, start + 1.5, text, words)
        spans += [*u.utterance.silence, *(s for v in u.revised for s in v.silence)]
        shown = u.utterance.text
    assert not re.search(r"\d", shown)
    assert silenced(spans, 1.0, 7.4)


def test_benign_numbers_far_from_a_sensitive_run_are_not_silenced() -> None:
    r = CallRedactor()
    spans: list[tuple[float, float]] = []
    for start, text in [(1.0, "My card is 4111 1111 1111 1111"), (20.0, "That's 45 dollars")]:
        text, words = timed(start, text)
        u = r.add("customer", start, start + 3.0, text, words)
        spans += [*u.utterance.silence, *(s for v in u.revised for s in v.silence)]
    assert silenced(spans, 2.5, 3.4) and not any(e > 20.0 for _, e in spans)


def test_an_order_number_read_digit_by_digit_stays_whole() -> None:
    # "My order number is" and then the digits as a recogniser cut them from a reading with pauses: the part
    # after the first pause is no new number of 7 digits.
    said = ["My order number is", "0", "7, 9.", "Three.", "8, 9, 2", "0", "Four dollars."]
    assert list(read(said, pause=0.5).values()) == said


def test_a_card_right_after_a_complete_order_number_is_still_a_card() -> None:
    shown = read(["Reference 123456.", "930344596350."], pause=1.0)
    assert list(shown.values()) == ["Reference 123456.", "[number]."]


def test_digits_written_with_dots_continue_the_run_they_end() -> None:
    # Whisper writes the last two digits of a СНИЛС said one at a time as "8.0.": not a decimal, nor a date,
    # so they stay with the nine before them; the minutes said next keep their number.
    shown = read(["Мой СНИЛС", "7-4-3", "9-1-5", "0-0-0", "8.0.", "52 минут."], pause=1.2)
    assert digits_left(dict(list(shown.items())[:5])) == 0
    assert shown[max(shown)] == "52 минут."


def test_a_decimal_and_a_date_stay_decimals_and_dates() -> None:
    assert list(read(["It is 4.5 percent, due 12.05."]).values()) == ["It is 4.5 percent, due 12.05."]


def test_listen_in_is_guarded_after_a_cue_and_while_digits_may_go_on() -> None:
    r = CallRedactor()
    r.add("agent", 0.0, 2.0, "How are you today?")
    assert not r.guarding("customer", 3.0) and not r.guarding("agent", 3.0)
    r.add("agent", 3.0, 5.0, "Can I have the long number on your card?")
    assert r.guarding("customer", 6.0) and r.guarding("agent", 6.0)  # either may read it out
    assert not r.guarding("customer", 5.0 + 21.0)  # the cue is stale after CUE_S (20 s)
    r.add("customer", 30.0, 31.0, "it's 4111")
    assert r.guarding("customer", 32.0) and not r.guarding("agent", 32.0)
    assert not r.guarding("customer", 31.0 + RUN_GAP_S + 0.1)
    r.add("customer", 32.0, 33.0, "and that's all")
    assert not r.guarding("customer", 33.5)


def test_digits_heard_as_other_words_in_a_reading_are_digits_too() -> None:
    # A card read one digit at a time, each its own utterance; Whisper wrote half of them as words
    # ("Син" for семь, "Мол." for ноль): the reading is one number, and those words are its digits.
    said = ["Син", "Тать.", "Син!", "один", "Мол.", "Четвери.", "6", "5", "6", "Три.", "Дадь.", "Четвери!", "один",
            "Четвери.", "7", "2", "Девять минут"]
    shown = read(said, pause=0.6)
    assert list(shown.values())[:-1] == [re.sub(r"[^\W\d_]+|\d+", "[number]", s, count=1) for s in said[:-1]]
    assert shown[max(shown)] == "Девять минут"


def test_short_answers_around_a_number_are_not_a_reading() -> None:
    said = ["Hello?", "Right.", "5", "Sorry?", "5", "Great.", "Thanks."]
    assert list(read(said, pause=0.6).values()) == said


def test_a_unit_word_heard_on_its_own_keeps_the_amount_before_it() -> None:
    assert list(read(["780", "6", "Dollars"], pause=0.3).values()) == ["780", "6", "Dollars"]
    # ...but never the digits of a sensitive number that came before
    shown = read(["My card number is", "4111 1111", "1111 1111", "minutes"], pause=0.3)
    assert digits_left(shown) == 0


def test_a_time_said_after_a_phone_number_stays() -> None:
    shown = read(["Мой номер 8 916 555 12 34,", "7-30 после полудня."], pause=0.5)
    assert list(shown.values()) == ["Мой номер [phone],", "7-30 после полудня."]


def test_a_word_that_is_also_a_unit_does_not_make_a_card_an_amount() -> None:
    # "a" is a unit word after a number ("7 a.m."), not at the start of an utterance of its own
    shown = read(["4111 1111 1111", "1111", "A moment please."], pause=0.3)
    assert digits_left(shown) == 0


def said_at(r: CallRedactor, utterances: list[tuple[float, str]]) -> dict[float, str]:
    """What ends up shown for each (start, text) of the customer, 0.8 s long each, revisions applied."""
    shown: dict[float, str] = {}
    for start, text in utterances:
        u = r.add("customer", start, start + 0.8, text)
        shown[start] = u.utterance.text
        for v in u.revised:
            shown[v.start] = v.text
    return shown


@pytest.mark.parametrize("amount", [["780", "6", "Dollars"], ["70", "$3."], ["AD", "Four dollars"],
                                    ["30", "2", "Minutes"], ["8", "4 dollars"]])
def test_an_amount_said_in_pieces_after_a_sensitive_number_is_shown_again(amount: list[str]) -> None:
    # The first pieces join the number before them (under RUN_GAP_S) and are hidden with it, until the unit
    # shows what they were; the number itself stays hidden.
    r = CallRedactor()
    card = [(0.0, "My card number is 4111"), (1.5, "1111"), (3.0, "1111"), (4.5, "1111")]
    first = 4.5 + 0.8 + 3.0
    shown = said_at(r, card + [(first + 1.0 * k, piece) for k, piece in enumerate(amount)])
    assert [shown[s] for s, _ in card] == ["My card number is [card]", "[card]", "[card]", "[card]"]
    assert [shown[first + 1.0 * k] for k in range(len(amount))] == amount


def test_a_number_read_one_digit_at_a_time_is_no_amount_before_a_unit() -> None:
    # The last digit of a reading, 1 s after the one before, is the reading going on, not an amount's start.
    r = CallRedactor()
    digits = [(1.6 * k, d) for k, d in enumerate("4111111111111111")]
    shown = said_at(r, [*digits, (1.6 * 16, "5 minutes")])
    assert all(shown[s] == "[card]" for s, _ in digits)


def test_a_short_number_written_before_an_amount_or_a_time_is_part_of_it() -> None:
    shown = read(["Мой номер 8 916 555 12 34,", "7, 30 после полудня.", "50, 2 долларов"], pause=0.5)
    assert list(shown.values()) == ["Мой номер [phone],", "7, 30 после полудня.", "50, 2 долларов"]


def test_a_number_hidden_only_for_the_amount_it_swallowed_is_shown_again() -> None:
    # Five digits alone are no number to hide; with the "30" said 3 s later they made six, until "2 | Minutes"
    # showed the 30 to be a duration. A number hidden on its own merits stays hidden (the tests above).
    r = CallRedactor()
    reading = [(1.2 * k, d) for k, d in enumerate(["one", "3", "8", "9", "5"])]
    after = 1.2 * 4 + 0.8 + 3.0
    shown = said_at(r, [*reading, (after, "30"), (after + 1.0, "2"), (after + 2.0, "Minutes")])
    assert list(shown.values()) == ["one", "3", "8", "9", "5", "30", "2", "Minutes"]


def test_a_digit_heard_as_a_word_at_the_end_of_a_reading_stays_hidden_before_a_unit() -> None:
    # "Четвери." (четыре) ends a card read one digit at a time; "Девять минут" after it is the reading's
    # misheard last digits, not an amount that the word starts.
    said = ["Син", "1", "Мол.", "5", "6", "4", "Три.", "2", "один", "Четвери.", "7", "2", "0", "3", "Мол.", "Четвери.",
            "Девять минут"]
    shown = read(said, pause=0.6)
    assert list(shown.values())[-2] == "[number]."


def test_a_duration_whose_unit_whisper_set_off_with_a_comma_after_a_number_stays() -> None:
    # "Сорок, минут!" 2.5 s after a number that is hidden: the 40 is a duration, not the number going on.
    shown = read(["Номер телефона 8 916 555 12 34", "Сорок, минут!"], pause=2.5)
    assert list(shown.values()) == ["Номер телефона [phone]", "Сорок, минут!"]
