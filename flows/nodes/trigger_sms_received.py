"""trigger.sms_received: start a run on an inbound SMS matching keywords or a pattern."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from flows.nodes._common import MAX_MATCH_TEXT, event_data, normalize_phone
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec

MatchMode = Literal["first_word", "exact", "contains", "regex", "any"]
_NEEDS_KEYWORDS = ("first_word", "exact", "contains")
#: Punctuation people put after a keyword ("JOIN!", "Yes.") that should not block a match.
_TRAILING = ".,!?;:"


class Config(NodeConfig):
    match: MatchMode = Field(
        "first_word",
        description="How the body is matched: its first word, the exact whole text, "
        "contains a keyword anywhere, a regular expression, or any message.",
    )
    keywords: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="Keywords, matched case-insensitively (first_word / exact / contains).",
    )
    pattern: str | None = Field(
        None,
        validate_default=True,
        description="Regular expression searched case-insensitively in the body (regex).",
    )
    channels: list[str] = Field(
        default_factory=list, description="Only SMS received on these channels (empty = all)."
    )
    senders: list[str] = Field(
        default_factory=list, description="Only SMS from these numbers, E.164 (empty = all)."
    )
    groups: list[str] = Field(
        default_factory=list,
        description="Only SMS from members of any of these groups (group ids; empty = anyone).",
    )
    exclude_groups: list[str] = Field(
        default_factory=list,
        description="Never SMS from members of these groups (group ids).",
    )

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str], info: ValidationInfo) -> list[str]:
        mode = info.data.get("match")
        cleaned = [k.strip() for k in value if k.strip()]
        if mode in _NEEDS_KEYWORDS and not cleaned:
            raise ValueError(f"match {mode!r} needs at least one keyword")
        if mode == "first_word" and any(len(k.split()) > 1 for k in cleaned):
            raise ValueError("first_word keywords must be single words")
        return cleaned

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("match") == "regex":
            if not value:
                raise ValueError("match 'regex' needs a pattern")
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


def match_sms(
    config: Config, event: Mapping[str, Any], groups: Collection[str] | None = None
) -> dict[str, Any] | None:
    """If the inbound SMS event matches, what the match found (keyword, rest, groups).

    ``groups`` are the sender's group ids; None = not known (the group filters are then
    left out, so the answer may be a match the filters would refuse)."""
    data = event_data(event)
    if groups is not None and not in_groups(config, groups):
        return None
    if config.channels and data.get("channel_id") not in config.channels:
        return None
    if config.senders:
        sender = normalize_phone(str(data.get("from") or ""))
        if sender not in {normalize_phone(s) for s in config.senders}:
            return None
    body = str(data.get("body") or "")[:MAX_MATCH_TEXT]
    return match_body(config, body)


def in_groups(config: Config, groups: Collection[str]) -> bool:
    """A member of any of ``groups`` (when set) and of none of ``exclude_groups``."""
    if config.groups and not any(g in groups for g in config.groups):
        return False
    return not any(g in groups for g in config.exclude_groups)


def match_body(config: Config, body: str) -> dict[str, Any] | None:
    """Keyword / pattern matching of a message body, case-insensitive."""
    text = body.strip()
    first, _, rest = text.partition(" ")
    found: dict[str, Any] = {"keyword": None, "rest": rest.strip(), "groups": []}
    folded = {k.casefold(): k for k in config.keywords}
    if config.match == "any":
        return found
    if config.match == "first_word":
        word = first.rstrip(_TRAILING).casefold()
        if word in folded:
            return {**found, "keyword": folded[word]}
        return None
    if config.match == "exact":
        whole = " ".join(text.split()).rstrip(_TRAILING).casefold()
        if whole in folded:
            return {**found, "keyword": folded[whole], "rest": ""}
        return None
    if config.match == "contains":
        lowered = text.casefold()
        for key, keyword in folded.items():
            if key in lowered:
                return {**found, "keyword": keyword}
        return None
    match = re.search(config.pattern or "", text, re.IGNORECASE)
    if match is None:
        return None
    return {
        **found,
        "keyword": match.group(0),
        "groups": list(match.groups()),
        "named": match.groupdict(),
    }


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Output the message fields plus what matched (``keyword``, ``rest``, ``groups``)."""
    data = dict(event_data(ctx.trigger))
    found = match_body(config, str(data.get("body") or "")[:MAX_MATCH_TEXT]) or {}
    return NodeResult(output={**data, **found})


SPEC = NodeSpec(
    type="trigger.sms_received",
    title="SMS received",
    description="Starts the flow when an SMS arrives that matches keywords or a pattern.",
    category="trigger",
    config_model=Config,
    handler=handle,
    can_fail=False,
    id_prefix="start",
    outputs=("body", "from", "to", "keyword", "rest", "channel_id", "sim_slot"),
)
