from __future__ import annotations

import pytest

from models.cues import find_cues, is_backchannel


def categories(text: str, leg: str, language: str | None = None) -> list[str]:
    return [c.category for c in find_cues(text, leg, language)]


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("This is ridiculous, I've been on hold for an hour!", "en", ["frustration"]),
        ("I'm so frustrated with this.", "en", ["frustration"]),
        ("This is the third time I'm calling about it.", "en", ["frustration"]),
        ("Can I speak to your manager please?", "en", ["manager_request"]),
        ("Put me through to a supervisor.", "en", ["manager_request"]),
        ("I want to cancel my subscription.", "en", ["churn_threat"]),
        ("I'm switching to another provider.", "en", ["churn_threat"]),
        ("Это безобразие, я очень раздражён!", "ru", ["frustration"]),
        ("Меня это раздражает", "ru", ["frustration"]),
        ("Сколько можно ждать?", "ru", ["frustration"]),
        ("Позовите менеджера.", "ru", ["manager_request"]),
        ("Соедините с руководителем", "ru", ["manager_request"]),
        ("Хочу поговорить с вашим начальством", "ru", ["manager_request"]),
        ("Я отменяю подписку.", "ru", ["churn_threat"]),
        ("Отмените, пожалуйста, договор", "ru", ["churn_threat"]),
        ("Я уйду к другому оператору", "ru", ["churn_threat"]),
    ],
)
def test_customer_cues(text: str, language: str, expected: list[str]) -> None:
    assert categories(text, "customer", language) == expected
    # Without a language hint both pattern sets are tried.
    assert categories(text, "customer", None) == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("I understand how frustrating that must be.", "en", ["empathy"]),
        ("I'm so sorry about that.", "en", ["apology"]),
        ("My apologies for the wait.", "en", ["apology"]),
        ("Got it, let me check that for you.", "en", ["acknowledgement"]),
        ("Я вас понимаю, это действительно неприятно.", "ru", ["empathy"]),
        ("Извините за ожидание.", "ru", ["apology"]),
        ("Приношу свои извинения", "ru", ["apology"]),
        ("Прошу прощения", "ru", ["apology"]),
        ("Понятно, сейчас проверю.", "ru", ["acknowledgement"]),
    ],
)
def test_agent_cues(text: str, language: str, expected: list[str]) -> None:
    assert categories(text, "agent", language) == expected


def test_several_categories_in_order_with_matched_text() -> None:
    cues = find_cues("I'm sorry, I understand. Got it.", "agent", "en")
    assert [c.category for c in cues] == ["apology", "empathy", "acknowledgement"]
    assert cues[0].text == "i'm sorry"
    assert cues[2].start == "I'm sorry, I understand. Got it.".index("Got")


def test_cues_belong_to_their_leg() -> None:
    assert categories("I understand, my apologies, got it", "customer", "en") == []
    assert categories("I want to cancel", "agent", "en") == []
    assert categories("I want to cancel", "unknown-leg", "en") == []


@pytest.mark.parametrize(
    "text",
    [
        "Could you check my balance?",
        "Thank you, that was helpful.",
        "I'd like to update my address.",
        "Спасибо, всё понятно.",  # "понятно" is acknowledgement for agents, nothing for customers
        "Хорошо, давайте так и сделаем.",
        "",
    ],
)
def test_neutral_customer_text_has_no_cues(text: str) -> None:
    assert find_cues(text, "customer") == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Okay.", "en"),
        ("mm-hm", "en"),
        ("Uh-huh.", "en"),
        ("right", "en"),
        ("Sure.", "en"),
        ("Yeah, yeah.", "en"),
        ("All right.", "en"),
        ("I see.", "en"),
        ("Got it.", "en"),
        ("Okay, right.", "en"),
        ("Mm-hmm", None),
        ("Ага.", "ru"),
        ("Угу", "ru"),
        ("Да-да.", "ru"),
        ("Понятно.", "ru"),
        ("Хорошо", "ru"),
        ("Так.", "ru"),
        ("Ну да", None),
        ("", "en"),
        ("  ", "ru"),
        ("...", None),
    ],
)
def test_backchannels(text: str, language: str | None) -> None:
    assert is_backchannel(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("No, that's not what I said.", "en"),
        ("Wait, can I ask something?", "en"),
        ("Okay but I need a refund now", "en"),
        ("Нет, подождите.", "ru"),
        ("Да, но я хочу вернуть деньги", "ru"),
        ("угу", "en"),  # a Russian backchannel is not English
    ],
)
def test_not_backchannels(text: str, language: str) -> None:
    assert not is_backchannel(text, language)


def test_the_match_form_joins_what_whisper_splits() -> None:
    from models.textnorm import match_form

    assert match_form("Uh -huh.") == "uhhuh"
    assert match_form("My PIN is 1 2 3 4, okay?") == "my pin is 1234 okay"
    assert match_form("Да-да, ясно (laughs)") == "дада ясно"


def test_a_repeat_back_says_only_what_the_other_said() -> None:
    from models.cues import repeats

    assert repeats("2019.", "it's a 2019 Tesla")
    assert repeats("Okay, 2019.", "it's a 2019 Tesla")
    assert not repeats("Okay.", "it's a 2019 Tesla")  # a plain continuer, not a repeat
    assert not repeats("A 2020 one?", "it's a 2019 Tesla")
    assert not repeats("so the 2019 Tesla has a recall notice", "it's a 2019 Tesla")
