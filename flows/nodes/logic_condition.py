"""logic.condition: test a value and continue on ``true`` or ``false``.

Besides comparisons (equals, contains, a regular expression, numbers) it has router tests
like RapidPro's: a number in a range, a number, a date (and one before / after / on
another), an email address, a phone number, any or all of some words. What matched is the
step's ``output.match`` (the number, the date as ISO text, the address, the E.164 number,
the words), so later steps can use it: ``{{ steps.check.output.match }}``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

import phonenumbers
from pydantic import Field, ValidationInfo, field_validator, model_validator

from flows.expressions import is_template
from flows.nodes import _text_finds as finds
from flows.nodes._common import MAX_MATCH_TEXT
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, text_template

Operator = Literal[
    "equals",
    "not_equals",
    "contains",
    "matches",
    "in",
    "gt",
    "lt",
    "is_empty",
    "between",
    "has_number",
    "has_date",
    "date_before",
    "date_after",
    "date_equals",
    "has_email",
    "has_phone",
    "has_any_word",
    "has_all_words",
]
_DATE_COMPARISONS = ("date_before", "date_after", "date_equals")


class Config(NodeConfig):
    value: str = text_template(
        description="The value to test, e.g. {{ steps.ask.output.body }}.", max_length=10_000
    )
    operator: Operator = Field(
        "equals",
        description="equals / not_equals / contains / matches (regular expression) / in "
        "(one of a list) / gt / lt (numbers; false if either side is not a number) / "
        "is_empty (blank after trimming) / between (the first number in the value is in "
        "the operand's range 'low,high', inclusive) / has_number / has_date / "
        "date_before / date_after / date_equals (the first date in the value against the "
        "operand: a date, 'today' or {{ run.started_at }}) / has_email / has_phone / "
        "has_any_word / has_all_words (the operand's words, whole words in the value).",
    )
    operand: str | list[str] = text_template(
        "",
        validate_default=True,
        description="What to compare with. For `in` and the word tests: a list, or "
        "comma-separated text. For `between`: 'low,high' or [low, high].",
    )
    case_sensitive: bool = Field(False, description="Compare letters case-sensitively.")
    date_order: finds.DateOrder = Field(
        "day_first",
        description="How the date tests read 1/12/2026: day_first (1 December) or "
        "month_first (January 12). ISO dates (2026-12-01) always work.",
    )
    region: str | None = Field(
        None,
        description="has_phone: the country (ISO 3166, e.g. US, GB) of numbers written "
        "without +country code; without it only international numbers (+…) count.",
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region code phone numbers know (US, GB, …)")
        return value

    @field_validator("operand")
    @classmethod
    def _operand(cls, value: str | list[str], info: ValidationInfo) -> str | list[str]:
        if (
            info.data.get("operator") == "matches"
            and isinstance(value, str)
            and not is_template(value)
        ):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _literal_operand(self) -> Config:
        """A range or date written in the config is checked now (a template once rendered)."""
        if _is_template(self.operand):
            return self
        if self.operator == "between":
            _range(self.operand)
        if self.operator in _DATE_COMPARISONS:
            text = _joined(self.operand)
            if finds.parse_date(text, self.date_order, date.today()) is None:
                raise ValueError(f"{text!r} is not a date (2026-12-01, today, …)")
        return self


def _is_template(value: str | list[str]) -> bool:
    items = [value] if isinstance(value, str) else value
    return any(is_template(item) for item in items)


def _joined(operand: str | list[str]) -> str:
    return operand if isinstance(operand, str) else ",".join(operand)


def _items(operand: str | list[str]) -> list[str]:
    items = operand if isinstance(operand, list) else operand.split(",")
    return [item.strip() for item in items if item.strip()]


def _range(operand: str | list[str]) -> tuple[float, float]:
    """``'low,high'`` or ``[low, high]`` as numbers (ValueError says what is wrong)."""
    items = _items(operand)
    bounds = [finds.parse_number(item) for item in items]
    if len(bounds) != 2 or bounds[0] is None or bounds[1] is None:
        raise ValueError(f"between needs two numbers 'low,high', got {operand!r}")
    low, high = float(bounds[0]), float(bounds[1])
    if low > high:
        raise ValueError(f"between: low {low:g} is above high {high:g}")
    return low, high


def evaluate(config: Config, today: date | None = None) -> bool:
    """The condition's truth value (config already rendered)."""
    return outcome(config, today or date.today())[0]


def outcome(config: Config, today: date) -> tuple[bool, Any]:
    """(the truth value, what matched: None when false)."""
    value = config.value.strip()
    operator = config.operator
    if operator.startswith("has_") or operator in ("between", *_DATE_COMPARISONS):
        found = _find(config, value, today)
        return found is not None, found
    if operator == "is_empty":
        return value == "", None
    if operator in ("gt", "lt"):
        result = _compare_numbers(value, config.operand, operator)
        return result, (finds.parse_number(value) if result else None)
    if operator == "matches":
        return _regex(config, value)
    result = _compare_text(config, value)
    return result, (value if result else None)


def _compare_text(config: Config, value: str) -> bool:
    fold = (lambda s: s) if config.case_sensitive else str.casefold
    if config.operator == "in":
        return fold(value) in {fold(item) for item in _items(config.operand)}
    operand = _joined(config.operand).strip()
    if config.operator == "equals":
        return fold(value) == fold(operand)
    if config.operator == "not_equals":
        return fold(value) != fold(operand)
    return fold(operand) in fold(value)  # contains


def _regex(config: Config, value: str) -> tuple[bool, Any]:
    operand = _joined(config.operand)
    flags = 0 if config.case_sensitive else re.IGNORECASE
    try:
        found = re.search(operand.strip(), value[:MAX_MATCH_TEXT], flags)
    except re.error as exc:
        raise NodeError(f"operand is not a valid regular expression: {exc}") from None
    return found is not None, (found.group(0) if found else None)


def _find(config: Config, value: str, today: date) -> Any:
    """What a router test found in the value (None: the test is false)."""
    operator = config.operator
    if operator in ("has_number", "between"):
        number = finds.find_number(value)
        if number is None or operator == "has_number":
            return number
        try:
            low, high = _range(config.operand)
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        return number if low <= number <= high else None
    if operator == "has_email":
        return finds.find_email(value)
    if operator == "has_phone":
        return finds.find_phone(value, config.region)
    if operator in ("has_any_word", "has_all_words"):
        words = _items(config.operand)
        found = finds.find_words(value, words, case_sensitive=config.case_sensitive)
        enough = bool(found) if operator == "has_any_word" else len(found) == len(words)
        return found if words and enough else None
    return _find_date(config, value, today)


def _find_date(config: Config, value: str, today: date) -> str | None:
    found = finds.find_date(value, config.date_order, today)
    if found is None or config.operator == "has_date":
        return found.isoformat() if found else None
    operand = _joined(config.operand)
    other = finds.parse_date(operand, config.date_order, today)
    if other is None:
        raise NodeError(f"operand {operand!r} is not a date (2026-12-01, today, …)")
    holds = {
        "date_before": found < other,
        "date_after": found > other,
        "date_equals": found == other,
    }[config.operator]
    return found.isoformat() if holds else None


def _compare_numbers(value: str, operand: Any, operator: str) -> bool:
    try:
        left, right = float(value), float(str(operand).strip())
    except ValueError:
        return False
    return left > right if operator == "gt" else left < right


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Take ``true`` or ``false``; ``match`` is what the test found."""
    result, match = outcome(config, ctx.now.date())
    return NodeResult(
        output={
            "value": config.value,
            "operator": config.operator,
            "result": result,
            "match": match,
        },
        port="true" if result else "false",
    )


SPEC = NodeSpec(
    type="logic.condition",
    title="Condition",
    description="Tests a value (a comparison, or a number, date, email, phone number or "
    "words in it) and continues on `true` or `false`.",
    category="logic",
    config_model=Config,
    handler=handle,
    ports=("true", "false"),
    id_prefix="check",
    outputs=("result", "value", "match"),
)
