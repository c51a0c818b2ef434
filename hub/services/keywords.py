"""Carrier opt-out keywords (CTIA / FCC practice): exact single word, any case."""

from __future__ import annotations

from typing import Literal

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

Keyword = Literal["stop", "start", "help"]


def is_compliance_reply(body: str | None) -> bool:
    """True for the keywords the hub answers itself and flows never see.

    "YES" is left out: it re-subscribes an opted-out contact, but for everyone else it is
    an ordinary answer ("Reply YES to confirm")."""
    keyword = classify(body)
    return keyword is not None and not (keyword == "start" and _word(body) == "YES")


def _word(body: str | None) -> str:
    return " ".join((body or "").strip().rstrip(".!").split()).upper()


def classify(body: str | None) -> Keyword | None:
    """Which compliance keyword a message is, if it is exactly one (surrounding spaces and
    a trailing full stop or exclamation mark are tolerated, as phones add them)."""
    if not body:
        return None
    word = _word(body)
    if word in OPT_OUT_WORDS:
        return "stop"
    if word in OPT_IN_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None
