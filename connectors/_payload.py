"""Reading gateway payloads: every miss or wrong type becomes a PayloadError naming the field.

Connectors never index a decoded body directly (a ``KeyError`` would escape as a 500);
they read it through :class:`Fields`, whose error messages say exactly what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from connectors.base import PayloadError

#: Unix times above this are taken as milliseconds (1e11 s is the year 5138).
_MILLISECONDS_ABOVE = 100_000_000_000
_DIGITS = re.compile(r"[0-9]+")
#: Digit strings short enough to read as a number without surprises.
_INT = re.compile(r"[0-9]{1,18}")


def type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def decode_json(body: bytes) -> Any:
    """The body parsed as JSON, or PayloadError saying why it is not JSON."""
    if not body.strip():
        raise PayloadError("empty body, expected JSON")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8 text (byte {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, RecursionError) as exc:
        # Integers longer than Python's digit limit, or absurd nesting.
        raise PayloadError(f"body is not usable JSON: {exc}") from exc


def json_object(body: bytes) -> Fields:
    """The body as a JSON object, or PayloadError."""
    data = decode_json(body)
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, got {type_name(data)}")
    return Fields(data)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """The body as ``application/x-www-form-urlencoded`` pairs, blank values kept."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"form body is not UTF-8 text (byte {exc.start})") from exc
    # Blank values are kept because providers sign them too (Twilio's ToCity=&...).
    return parse_qsl(text, keep_blank_values=True)


def form_object(body: bytes) -> Fields:
    """The form body as fields (first value of a repeated name wins)."""
    data: dict[str, str] = {}
    for name, value in form_pairs(body):
        data.setdefault(name, value)
    return Fields(data)


def plus_digits(number: str) -> str:
    """Add the '+' a provider left off a digits-only international number ("4477…")."""
    number = number.strip()
    return f"+{number}" if _DIGITS.fullmatch(number) else number


class Fields:
    """Typed, error-reporting reads from one decoded JSON object or form."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self._prefix = prefix

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def path(self, name: str) -> str:
        """The dotted name of a field, as error messages show it."""
        return f"{self._prefix}{name}"

    def _wrong(self, name: str, expected: str) -> PayloadError:
        value = self.data[name]
        return PayloadError(f"field {self.path(name)} must be {expected}, got {type_name(value)}")

    def _missing(self, name: str) -> PayloadError:
        return PayloadError(f"missing field {self.path(name)}")

    def obj(self, name: str) -> Fields:
        """A required nested object."""
        if self.data.get(name) is None:
            raise self._missing(name)
        value = self.data[name]
        if not isinstance(value, dict):
            raise self._wrong(name, "an object")
        return Fields(value, prefix=f"{self.path(name)}.")

    def opt_str(self, name: str) -> str | None:
        """An optional string; ids sent as JSON numbers are read as their digits."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise self._wrong(name, "a string")

    def req_str(self, name: str, *, allow_empty: bool = False) -> str:
        """A required string (empty only where a gateway legitimately sends "")."""
        value = self.opt_str(name)
        if value is None:
            raise self._missing(name)
        if not value and not allow_empty:
            raise PayloadError(f"field {self.path(name)} must not be empty")
        return value

    def opt_int(self, name: str, *, minimum: int | None = None) -> int | None:
        """An optional integer, also accepted as a string of digits."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "an integer")
        if minimum is not None and value < minimum:
            raise PayloadError(f"field {self.path(name)} must be at least {minimum}, got {value}")
        return value

    def opt_bool(self, name: str) -> bool | None:
        """An optional boolean, also accepted as "true"/"false"."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self._wrong(name, "a boolean")

    def opt_time(self, name: str) -> datetime | None:
        """An optional instant: unix seconds or milliseconds, or an ISO 8601 string."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        try:
            return to_datetime(value)
        except ValueError as exc:
            raise PayloadError(f"field {self.path(name)}: {exc}") from exc


def to_datetime(value: object) -> datetime:
    """Read a unix time (s or ms) or ISO 8601 text as an aware datetime; ValueError if not one."""
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = value / 1000 if value > _MILLISECONDS_ABOVE else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a usable unix time") from exc
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an ISO 8601 date-time") from exc
        # Providers that send no offset (Vonage's "2025-11-26 12:00:05") mean UTC.
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"expected a unix time or ISO 8601 string, got {type_name(value)}")
