"""Random and malformed input at every webhook-delivery route: always a 4xx JSON error or a
success, never a 500 (hypothesis)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st

from hub.context import Hub
from hub.services.apikeys import create_api_key
from tests.fuzzing import EDGE_TIMES, FUZZ, Rig, assert_clean, hub_rig, integers, json_values


class NoDNS(AbstractResolver):
    """A resolver that knows no names."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise OSError(f"no DNS in the fuzz rig ({host})")

    async def close(self) -> None:
        pass


async def _setup(hub: Hub, client: httpx.AsyncClient) -> dict[str, Any]:
    hub.http.resolver_factory = NoDNS  # no request leaves the machine
    _row, key = await create_api_key(hub, "fuzz")
    headers = {"Authorization": f"Bearer {key}"}
    ep = await client.post(
        "/api/v1/endpoints", json={"url": "https://example.com/hook"}, headers=headers
    )
    hook = await client.post(
        "/api/v1/hooks",
        json={"target_url": "https://example.com/zap", "event": "*"},
        headers=headers,
    )
    return {"headers": headers, "endpoint_id": ep.json()["id"], "hook_id": hook.json()["id"]}


@pytest.fixture
def rig(tmp_path: Path, database_url: str) -> Iterator[Rig]:
    # Guard on (as in production) so the SSRF checks meet the junk too; nothing resolves.
    with hub_rig(tmp_path, database_url, _setup, allow_private_destinations=False) as made:
        yield made


# URLs that reach every branch of the checks: odd hosts, schemes, presets' shapes.
urls = st.sampled_from(
    [
        "https://example.com/hook",
        "http://example.com/hook",
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://[::ffff:127.0.0.1]/",
        "https://[fe80::1%25eth0]/",
        "https://u:p@example.com/",
        "https://hooks.zapier.com/hooks/catch/1/abc/",
        "https://hook.eu1.make.com/abc",
        "https://n8n.example.com/webhook/x",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "javascript:alert(1)",
        "",
        "https://\u0000.com/",
    ]
) | st.text(max_size=60)
event_types = st.sampled_from(["*", "sms.received", "sms.nope", "", "flow.run.failed"])
endpoint_bodies = st.fixed_dictionaries(
    {},
    optional={
        "url": urls | json_values,
        "event_types": st.lists(event_types | st.text(max_size=10), max_size=4) | json_values,
        "description": json_values,
        "enabled": json_values,
        "headers": st.dictionaries(
            st.sampled_from(["X-A", "webhook-id", "Bad Name", "", "X\r\nY"]) | st.text(max_size=8),
            st.text(max_size=20),
            max_size=3,
        )
        | json_values,
        "rate_limit_per_s": json_values,
        "preset": st.sampled_from(["generic", "zapier", "make", "n8n", "x"]) | json_values,
        "secret": st.sampled_from(["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "x"])
        | json_values,
    },
)


@FUZZ
@given(
    method=st.sampled_from(["POST", "PATCH"]),
    payload=endpoint_bodies | json_values,
    raw=st.none() | st.binary(max_size=60),
)
def test_endpoint_writes_never_500(rig: Rig, method: str, payload: Any, raw: bytes | None) -> None:
    url = (
        "/api/v1/endpoints"
        if method == "POST"
        else f"/api/v1/endpoints/{rig.things['endpoint_id']}"
    )
    content = raw if raw is not None else json.dumps(payload).encode()
    headers = {**rig.things["headers"], "content-type": "application/json"}
    assert_clean(rig.call(method, url, content=content, headers=headers))


@FUZZ
@given(
    payload=st.fixed_dictionaries(
        {}, optional={"target_url": urls | json_values, "event": event_types | json_values}
    )
    | json_values
)
def test_hook_subscriptions_never_500(rig: Rig, payload: Any) -> None:
    assert_clean(rig.call("POST", "/api/v1/hooks", json=payload, headers=rig.things["headers"]))


@FUZZ
@given(
    action=st.sampled_from(["test", "rotate-secret", "replay"]),
    payload=st.none()
    | st.fixed_dictionaries(
        {},
        optional={
            "since": st.sampled_from(
                ["2026-01-01T00:00:00Z", "2026-01-01", "nope", "", *EDGE_TIMES]
            )
            | json_values,
            "overlap_s": json_values,
            "event_type": event_types | json_values,
        },
    )
    | json_values,
    known=st.booleans(),
)
def test_endpoint_actions_never_500(rig: Rig, action: str, payload: Any, known: bool) -> None:
    endpoint = rig.things["endpoint_id"] if known else "ep_unknown"
    url = f"/api/v1/endpoints/{endpoint}/{action}"
    kwargs: dict[str, Any] = {} if payload is None else {"json": payload}
    assert_clean(rig.call("POST", url, headers=rig.things["headers"], **kwargs))


@FUZZ
@given(
    path=st.sampled_from(
        ["/api/v1/endpoints", "/api/v1/deliveries", "/api/v1/hooks/sample", "/api/v1/hooks"]
    ),
    params=st.dictionaries(
        st.sampled_from(
            ["limit", "cursor", "status", "endpoint_id", "event_id", "event_type", "preset"]
        ),
        st.text(max_size=20) | integers.map(str),
        max_size=4,
    ),
    item=st.none() | st.text(max_size=40),
    method=st.sampled_from(["GET", "DELETE", "POST"]),
)
def test_reads_and_deletes_never_500(
    rig: Rig, path: str, params: dict[str, str], item: str | None, method: str
) -> None:
    url = path if item is None else f"{path}/{quote(item, safe='') or 'x'}"
    if method == "POST" and item is not None:
        url = f"/api/v1/deliveries/{quote(item, safe='') or 'x'}/retry"
    assert_clean(rig.call(method, url, params=params, headers=rig.things["headers"]))
