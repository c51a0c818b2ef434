"""logic.switch: route on a value to the first matching case's port, else ``default``."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flows.nodes._common import MAX_MATCH_TEXT, check_port_names
from flows.registry import NodeConfig, NodeContext, NodeResult, NodeSpec, text_template

DEFAULT_CASE = "default"
_RESERVED = {DEFAULT_CASE, "error"}
_PORT_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,39}$"


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: str = Field(pattern=_PORT_NAME, description="Port taken when this case matches.")
    equals: str | list[str] | None = Field(
        None, description="Matches if the value equals this text (or one of these)."
    )
    matches: str | None = Field(
        None, description="Matches if this regular expression is found in the value."
    )

    @field_validator("matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_test(self) -> Case:
        if (self.equals is None) == (self.matches is None):
            raise ValueError("a case needs exactly one of `equals` or `matches`")
        return self


class Config(NodeConfig):
    value: str = text_template(
        description="The value to route on, e.g. {{ steps.ask.output.body }}.", max_length=10_000
    )
    cases: list[Case] = Field(
        min_length=1, description="Tried in order; the first match decides the port."
    )
    case_sensitive: bool = Field(False, description="Compare letters case-sensitively.")

    @field_validator("cases")
    @classmethod
    def _ports(cls, cases: list[Case]) -> list[Case]:
        check_port_names([c.port for c in cases], _RESERVED, "port")
        return cases


def ports_of(config: Config) -> tuple[str, ...]:
    """One port per case, then ``default``."""
    return (*(case.port for case in config.cases), DEFAULT_CASE)


def choose(config: Config) -> str:
    """The port of the first matching case, or ``default``."""
    value = config.value.strip()
    fold = (lambda s: s) if config.case_sensitive else str.casefold
    for case in config.cases:
        if case.equals is not None:
            options = [case.equals] if isinstance(case.equals, str) else case.equals
            if fold(value) in {fold(option.strip()) for option in options}:
                return case.port
        elif case.matches is not None:
            flags = 0 if config.case_sensitive else re.IGNORECASE
            if re.search(case.matches, value[:MAX_MATCH_TEXT], flags):
                return case.port
    return DEFAULT_CASE


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Take the chosen case's port."""
    port = choose(config)
    return NodeResult(output={"value": config.value, "port": port}, port=port)


SPEC = NodeSpec(
    type="logic.switch",
    title="Switch",
    description="Routes on a value: the first matching case's port, else `default`.",
    category="logic",
    config_model=Config,
    handler=handle,
    ports=(DEFAULT_CASE,),
    ports_from_config=ports_of,
    ports_hint="one port per cases[].port, then default",
    port_list=("cases", "port"),
    id_prefix="route",
    outputs=("port", "value"),
)
