"""Carrier opt-out keywords (CTIA / FCC practice): exact single word, any case."""

from __future__ import annotations

from typing import Literal

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

Keyword = Literal["stop", "start", "help"]


def classify(body: str | None) -> Keyword | None:
    """Which compliance keyword a message is, if it is exactly one (surrounding spaces and
    a trailing full stop or exclamation mark are tolerated, as phones add them)."""
    if not body:
        return None
    word = " ".join(body.strip().rstrip(".!").split()).upper()
    if word in OPT_OUT_WORDS:
        return "stop"
    if word in OPT_IN_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None
