"""Helpers shared by several node types (SMS outcomes, coercions, event fields)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flows.ports import SmsCommand, SmsOutcome
from flows.registry import NodeError

#: Longest text we hand to the send pipeline (10 concatenated segments of GSM-7).
MAX_SMS_TEXT = 1530
#: Longest message body a trigger or condition compares (SMS are short; this bounds regex).
MAX_MATCH_TEXT = 2000

_PHONE_JUNK = re.compile(r"[\s().\-]")


def check_port_names(names: list[str], reserved: set[str], what: str) -> None:
    """Dynamic port names (switch cases, split branches): none reserved, none twice."""
    seen: set[str] = set()
    for name in names:
        if name in reserved:
            raise ValueError(f"{what} name {name!r} is reserved")
        if name in seen:
            raise ValueError(f"{what} {name!r} is named twice")
        seen.add(name)


def normalize_phone(value: str) -> str:
    """Strip spaces, dots, dashes and brackets; keep the leading + (filters compare E.164)."""
    return _PHONE_JUNK.sub("", value.strip())


def optional_int(value: Any, field: str) -> int | None:
    """A rendered template or number as an int (sim_slot "1" -> 1); blank -> None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise NodeError(f"{field} must be a whole number")
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        raise NodeError(f"{field} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise NodeError(f"{field} must be a whole number, got {value!r}")
    return int(number)


def optional_text(value: str | None) -> str | None:
    """A rendered template, None when blank."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def require_text(text: str, field: str = "text") -> str:
    """An SMS text must not render empty, nor be longer than the pipeline takes."""
    if not text.strip():
        raise NodeError(f"{field} rendered empty; an SMS needs text")
    if len(text) > MAX_SMS_TEXT:
        raise NodeError(f"{field} is {len(text)} characters; the limit is {MAX_SMS_TEXT}")
    return text


def sms_output(command: SmsCommand, outcome: SmsOutcome) -> dict[str, Any]:
    """The step output of a send: what was sent and what the pipeline said."""
    return {
        "to": command.to,
        "text": command.text,
        "status": outcome.status,
        "message_id": outcome.message_id,
        "suppressed": outcome.status == "suppressed",
        "reason": outcome.reason,
        "channel_id": outcome.channel_id or command.channel_id,
        "device_id": outcome.device_id or command.device_id,
        "sim_slot": outcome.sim_slot if outcome.sim_slot is not None else command.sim_slot,
    }


def event_data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``data`` object of a hub event (empty if absent)."""
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}
