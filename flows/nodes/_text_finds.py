"""What ``logic.condition``'s router tests look for in a text (as RapidPro's ``has_*`` tests
do): a number, a date, an email address, a phone number, words.

Each finder returns what it found (a number, a :class:`~datetime.date`, the address, the
E.164 number, the words) or None. Texts are cut at ``MAX_MATCH_TEXT`` characters first, so
a long message costs bounded time.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

import phonenumbers

from flows.nodes._common import MAX_MATCH_TEXT

DateOrder = Literal["day_first", "month_first"]

# "1,000" and "12,500.5" are thousands; "1,5" and "3.75" are decimals.
_NUMBER = re.compile(r"(?<![\w.,])(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:[.,](\d+))?(?![\w])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_NUMERIC_DATE = re.compile(r"(?<![\d/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\d/.-])")
_WORD = re.compile(r"\w+")

#: Month names and their common abbreviations (English, Spanish, French, Portuguese,
#: German): what a reply like "5 March", "le 5 mars" or "May 3rd" names.
_MONTHS: dict[str, int] = {}
for _month, _spellings in enumerate(
    (
        "january jan enero ene janvier janv janeiro januar",
        "february feb febrero février fevrier févr fev fevereiro februar",
        "march mar marzo mars março marco märz maerz",
        "april apr abril abr avril avr",
        "may mayo mai maio",
        "june jun junio juin junho juni",
        "july jul julio juillet juil julho juli",
        "august aug agosto août aout",
        "september sep sept septiembre septembre setembro",
        "october oct octubre octobre outubro oktober okt",
        "november nov noviembre novembre novembro",
        "december dec diciembre dic décembre decembre déc dezembro dez dezember",
    ),
    start=1,
):
    for _spelling in _spellings.split():
        _MONTHS[_spelling] = _month
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
# "5 March 2026", "5th of march", "le 5 mars", "5 de marzo de 2026"
_DAY_MONTH = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th|er|º)?\.?\s+(?:of\s+|de\s+)?({_MONTH_NAMES})\.?"
    r"(?:,?\s+(?:de\s+)?(\d{4}))?(?!\w)",
    re.IGNORECASE,
)
# "March 5, 2026", "may 3rd"
_MONTH_DAY = re.compile(
    rf"(?<!\w)({_MONTH_NAMES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?!\d)(?:,?\s+(\d{{4}}))?",
    re.IGNORECASE,
)


def find_number(text: str) -> int | float | None:
    """The first number in the text ("I am 25" -> 25, "1,5 kg" -> 1.5), or None."""
    found = _NUMBER.search(text[:MAX_MATCH_TEXT])
    if found is None:
        return None
    return _number(found)


def _number(found: re.Match[str]) -> int | float:
    sign, whole, fraction = found.group(1), found.group(2).replace(",", ""), found.group(3)
    if fraction:
        return float(f"{sign}{whole}.{fraction}")
    return int(f"{sign}{whole}")


def parse_number(text: str) -> int | float | None:
    """The text as one number (surrounding spaces allowed), or None."""
    found = _NUMBER.fullmatch(text.strip())
    return _number(found) if found is not None else None


def find_email(text: str) -> str | None:
    """The first email address in the text, or None."""
    found = _EMAIL.search(text[:MAX_MATCH_TEXT])
    return found.group(0) if found else None


def find_phone(text: str, region: str | None) -> str | None:
    """The first valid phone number in the text, as E.164: international numbers (``+…``)
    always, national ones when ``region`` (ISO 3166 ``US``, ``GB``…) says whose they are."""
    for match in phonenumbers.PhoneNumberMatcher(text[:MAX_MATCH_TEXT], region):
        return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    return None


def find_words(text: str, words: list[str], *, case_sensitive: bool) -> list[str]:
    """Which of ``words`` the text contains as whole words, in the order of ``words``."""
    fold = (lambda s: s) if case_sensitive else str.casefold
    present = {fold(word) for word in _WORD.findall(text[:MAX_MATCH_TEXT])}
    return [word for word in words if fold(word) in present]


def find_date(text: str, order: DateOrder, today: date) -> date | None:
    """The first date in the text. ISO ``2026-12-01`` always; ``1/12/2026``, ``1.12.26``
    and ``1-12-2026`` day first or month first by ``order``; month names ("5 March",
    "March 5th, 2026", "5 de marzo"), the year ``today``'s when not given."""
    text = text[:MAX_MATCH_TEXT]
    found: list[tuple[int, date]] = []
    for pattern, read in (
        (_ISO_DATE, _iso),
        (_NUMERIC_DATE, lambda m: _numeric(m, order)),
        (_DAY_MONTH, lambda m: _named(m.group(2), m.group(1), m.group(3), today)),
        (_MONTH_DAY, lambda m: _named(m.group(1), m.group(2), m.group(3), today)),
    ):
        for match in pattern.finditer(text):
            value = read(match)
            if value is not None:
                found.append((match.start(), value))
                break
    return min(found, key=lambda item: item[0])[1] if found else None


def parse_date(text: str, order: DateOrder, today: date) -> date | None:
    """A comparison operand as a date: ``today``, an ISO date or date-time (its own day),
    or any date :func:`find_date` reads."""
    value = text.strip()
    if value.casefold() == "today":
        return today
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return find_date(value, order, today)


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _iso(match: re.Match[str]) -> date | None:
    return _make(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def _numeric(match: re.Match[str], order: DateOrder) -> date | None:
    first, second, year = int(match.group(1)), int(match.group(3)), int(match.group(4))
    if len(match.group(4)) == 2:
        year += 2000 if year < 70 else 1900
    day, month = (first, second) if order == "day_first" else (second, first)
    return _make(year, month, day)


def _named(month: str, day: str, year: str | None, today: date) -> date | None:
    number = _MONTHS.get(month.casefold())
    if number is None:
        return None
    return _make(int(year) if year else today.year, number, int(day))
