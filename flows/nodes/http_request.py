"""http.request: call a URL (a Zapier / Make / n8n hook, or any API) and continue on the result."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from flows.nodes._common import event_data
from flows.ports import HttpCommand, HttpOutcome
from flows.registry import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeSpec,
    text_template,
    value_template,
)

Preset = Literal["generic", "zapier", "make", "n8n"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
#: Response bodies kept on the step (and visible to templates) are cut to this size.
MAX_RESPONSE_BODY = 64 * 1024
#: Statuses worth retrying: timeouts, rate limits and server errors.
_RETRYABLE = {408, 425, 429}


class Config(NodeConfig):
    url: str = text_template(
        min_length=1,
        max_length=2000,
        description="The URL to call (`{{ secrets.NAME }}` inserts a stored secret).",
    )
    method: Method = Field("POST", description="HTTP method.")
    headers: dict[str, str] = text_template(
        default_factory=dict,
        description="Extra request headers (values are templates; "
        "`Bearer {{ secrets.NAME }}` inserts a stored secret).",
    )
    body: str | dict[str, Any] | list[Any] | None = value_template(
        None,
        description="Request body: an object (sent as JSON, every string inside a template) "
        "or a template string. Default: the trigger event (generic) or a flat object of "
        "its fields (zapier / make / n8n, easier to map in their editors).",
    )
    preset: Preset = Field("generic", description="generic, or a Zapier / Make / n8n catch hook.")
    timeout_s: float = Field(10.0, gt=0, le=60, description="Seconds to wait for an answer.")


def default_body(preset: str, ctx: NodeContext) -> Any:
    """What a request sends when the node sets no body."""
    if preset == "generic":
        return dict(ctx.trigger)
    data = event_data(ctx.trigger) or ctx.trigger
    flat: dict[str, Any] = {
        "event_id": ctx.trigger.get("id"),
        "event_type": ctx.trigger.get("type"),
        "timestamp": ctx.trigger.get("timestamp"),
    }
    flat.update({k: v for k, v in data.items() if not isinstance(v, Mapping | list)})
    flat.update({"flow_id": ctx.flow_id, "run_id": ctx.run_id})
    return flat


def _command(config: Config, ctx: NodeContext) -> HttpCommand:
    body = config.body if config.body is not None else default_body(config.preset, ctx)
    headers = {k.strip(): v for k, v in config.headers.items()}
    has_type = any(k.lower() == "content-type" for k in headers)
    payload: Any = None
    content: str | None = None
    if config.method in ("GET", "DELETE") and config.body is None:
        pass  # no default body on reads
    elif isinstance(body, str):
        content = body
        if not has_type:
            headers["Content-Type"] = "text/plain; charset=utf-8"
    else:
        payload = body
        if not has_type:
            headers["Content-Type"] = "application/json"
    return HttpCommand(
        url=config.url.strip(),
        method=config.method,
        headers=headers,
        json=payload,
        content=content,
        timeout_s=config.timeout_s,
        idempotency_key=ctx.idempotency_key,
        preset=config.preset,
        run_id=ctx.run_id,
        flow_id=ctx.flow_id,
        node_id=ctx.node_id,
    )


def _output(command: HttpCommand, outcome: HttpOutcome) -> dict[str, Any]:
    body = outcome.body[:MAX_RESPONSE_BODY]
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    return {
        "url": command.url,
        "method": command.method,
        "status": outcome.status,
        "ok": outcome.status is not None and 200 <= outcome.status < 300,
        "headers": dict(outcome.headers),
        "body": body,
        "json": parsed,
        "error": outcome.error,
    }


async def handle(config: Config, ctx: NodeContext) -> NodeResult:
    """Send the request; a 2xx takes ``success``, anything else fails the node."""
    command = _command(config, ctx)
    outcome = await ctx.effects.http_request(command)
    output = _output(command, outcome)
    if outcome.status is None:
        raise NodeError(
            f"request failed: {outcome.error or 'no response'}", retryable=True, output=output
        )
    if not output["ok"]:
        retryable = outcome.status >= 500 or outcome.status in _RETRYABLE
        raise NodeError(f"HTTP {outcome.status}", retryable=retryable, output=output)
    return NodeResult(output=output, port="success")


SPEC = NodeSpec(
    type="http.request",
    title="HTTP request",
    description="Calls a URL — a Zapier / Make / n8n hook or any API. A 2xx answer takes "
    "`success`; an error or other status (after retries) takes `error`. "
    "`{{ secrets.NAME }}` in the URL, headers or body inserts a stored secret when the "
    "request is sent; the run keeps only a placeholder.",
    category="http",
    config_model=Config,
    handler=handle,
    ports=("success", "error"),
    effectful=True,
    id_prefix="http",
    outputs=("status", "ok", "json", "body"),
    # The value is inserted by the hub when it sends; the step keeps a placeholder.
    secret_fields=("url", "headers", "body"),
)
