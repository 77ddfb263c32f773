"""The form of a transcript that rules match against; stored and shown text stays as recognised.

Whisper spells one sound many ways: "Uh -huh.", "uh-huh", "Mm-hmm", "да-да", and reads a digit string as
"1 2 3 4" one time and "1234" the next. Matching on the recognised text would make a rule's verdict depend on
the spelling of the day.
"""

from __future__ import annotations

import re

_HYPHEN = re.compile(r"(?<=\w)\s*-\s*(?=\w)")
"""A hyphen between two word pieces, with the spaces Whisper sometimes puts around it ("Uh -huh")."""
_DIGIT_GAP = re.compile(r"(?<=\d)[\s,.\-]+(?=\d)")
"""The spaces, commas, dots and dashes between digits read one by one ("1, 2, 3 4")."""
_BRACKETED = re.compile(r"[\[(*][^\])*]*[\])*]")
"""Sound descriptions such as "(laughs)", "[laughter]", "*coughs*": not words anyone said."""
_NOT_WORD = re.compile(r"[^\w\s']")


def fold(text: str) -> str:
    """Lower case, ё as е, one kind of apostrophe. Same length as the input, so offsets stay valid."""
    return text.lower().replace("ё", "е").replace("’", "'")


def match_form(text: str) -> str:
    """``text`` as rules see it: folded, sound descriptions dropped, hyphenated pieces joined ("uhhuh",
    "дада"), digit runs joined ("1234"), punctuation gone, single spaces."""
    t = _BRACKETED.sub(" ", fold(text))
    t = _DIGIT_GAP.sub("", t)
    t = _HYPHEN.sub("", t)
    return " ".join(_NOT_WORD.sub(" ", t).split())


def match_words(text: str) -> list[str]:
    return match_form(text).split()
