"""logic.condition: compare a value and continue on ``true`` or ``false``."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from flows.expressions import is_template
from flows.nodes._common import MAX_MATCH_TEXT
from flows.registry import NodeConfig, NodeContext, NodeError, NodeResult, NodeSpec, text_template

Operator = Literal["equals", "not_equals", "contains", "matches", "in", "gt", "lt", "is_empty"]


class Config(NodeConfig):
    value: str = text_template(
        description="The value to test, e.g. {{ steps.ask.output.body }}.", max_length=10_000
    )
    operator: Operator = Field(
        "equals",
        description="equals / not_equals / contains / matches (regular expression) / in "
        "(one of a list) / gt / lt (numbers; false if either side is not a number) / "
        "is_empty (blank after trimming).",
    )
    operand: str | list[str] = text_template(
        "",
        validate_default=True,
        description="What to compare with. For `in`: a list, or comma-separated text.",
    )
    case_sensitive: bool = Field(False, description="Compare letters case-sensitively.")

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


def evaluate(config: Config) -> bool:
    """The condition's truth value (config already rendered)."""
    value = config.value.strip()
    if config.operator == "is_empty":
        return value == ""
    if config.operator in ("gt", "lt"):
        return _compare_numbers(value, config.operand, config.operator)
    fold = (lambda s: s) if config.case_sensitive else str.casefold
    if config.operator == "in":
        items = config.operand if isinstance(config.operand, list) else config.operand.split(",")
        return fold(value) in {fold(item.strip()) for item in items}
    operand = config.operand if isinstance(config.operand, str) else ",".join(config.operand)
    operand = operand.strip()
    if config.operator == "equals":
        return fold(value) == fold(operand)
    if config.operator == "not_equals":
        return fold(value) != fold(operand)
    if config.operator == "contains":
        return fold(operand) in fold(value)
    flags = 0 if config.case_sensitive else re.IGNORECASE
    try:
        return re.search(operand, value[:MAX_MATCH_TEXT], flags) is not None
    except re.error as exc:
        raise NodeError(f"operand is not a valid regular expression: {exc}") from None


def _compare_numbers(value: str, operand: Any, operator: str) -> bool:
    try:
        left, right = float(value), float(str(operand).strip())
    except ValueError:
        return False
    return left > right if operator == "gt" else left < right


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Take ``true`` or ``false``."""
    result = evaluate(config)
    return NodeResult(
        output={"value": config.value, "operator": config.operator, "result": result},
        port="true" if result else "false",
    )


SPEC = NodeSpec(
    type="logic.condition",
    title="Condition",
    description="Compares a value and continues on `true` or `false`.",
    category="logic",
    config_model=Config,
    handler=handle,
    ports=("true", "false"),
    id_prefix="check",
    outputs=("result", "value"),
)
