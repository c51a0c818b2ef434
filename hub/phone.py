"""Phone numbers: everything stored and compared is E.164 (``+15550001234``)."""

from __future__ import annotations

import functools
import re

import phonenumbers

_SENDER_ID = re.compile(r"^[A-Za-z0-9 .&_-]{1,15}$")
#: An E.164 number as phonenumbers would write it: "+", a country code, 7-15 digits.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class InvalidNumber(ValueError):
    """A number that cannot be read as a phone number; the message says why."""


def to_e164(raw: str, region: str = "US") -> str:
    """Normalize a dialable number to E.164 or raise :class:`InvalidNumber`."""
    return _to_e164(raw, region.upper())


# The same few numbers come back all the time (a sender, then the reply to them), and
# parsing one costs tens of microseconds; an invalid one is remembered too (the error).
@functools.lru_cache(maxsize=8192)
def _cached(raw: str, region: str) -> str | InvalidNumber:
    try:
        return _parse(raw, region)
    except InvalidNumber as exc:
        return exc


def _to_e164(raw: str, region: str) -> str:
    found = _cached(raw, region)
    if isinstance(found, InvalidNumber):
        raise InvalidNumber(str(found))
    return found


def _parse(raw: str, region: str) -> str:
    text = raw.strip()
    if not text:
        raise InvalidNumber("phone number is empty")
    if text.isdigit() and len(text) > 10:
        # Gateways such as Vonage send international numbers without the "+".
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_address(raw: str | None, region: str = "US") -> str | None:
    """E.164 when the address is a phone number; short codes and sender ids kept as they are.

    Inbound SMS can come from "AMAZON" or "72345"; those are still contacts.
    """
    if raw is None:
        return None
    if _E164.fullmatch(raw):  # already canonical (what gateways send): nothing to parse
        return raw
    try:
        return to_e164(raw, region)
    except InvalidNumber:
        text = raw.strip()
        return text[:32] if text and _SENDER_ID.match(text) else None
