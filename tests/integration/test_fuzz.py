"""Random and malformed input at every ingress and API route: always a 4xx JSON error or a
success, never a 500 (hypothesis)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.simulator import sign_request
from hub.context import Hub
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from tests.fuzzing import FUZZ, Rig, assert_clean, hub_rig, integers, json_values

SIM_SECRET = "fuzz-simulator-secret"


async def _setup(hub: Hub, client: httpx.AsyncClient) -> dict[str, Any]:
    _row, key = await create_api_key(hub, "fuzz")
    configs: dict[str, dict[str, Any]] = {
        "simulator": {},
        "mysmsgate": {"api_key": "k"},
        "smsgate": {"username": "u", "password": "p"},
        "twilio": {"account_sid": "AC" + "2" * 32, "auth_token": "t" * 32},
        "vonage": {"api_key": "k", "api_secret": "s", "signature_method": "none"},
    }
    channels = {}
    for name, config in configs.items():
        row = await create_channel(
            hub, connector=name, name=name, config=config, webhook_secret=SIM_SECRET
        )
        channels[name] = row.id
    headers = {"Authorization": f"Bearer {key}"}
    flow = {"name": "fuzz", "nodes": [], "edges": []}
    made = await client.post("/api/v1/flows?draft=true", json=flow, headers=headers)
    return {"headers": headers, "channels": channels, "flow": made.json()["id"]}


@pytest.fixture
def rig(tmp_path: Path, database_url: str) -> Iterator[Rig]:
    with hub_rig(tmp_path, database_url, _setup) as made:
        yield made


# Bodies shaped roughly like the real ones, so parsers get past the first check.
field_names = st.sampled_from(
    [
        "event",
        "id",
        "from",
        "to",
        "text",
        "message",
        "message_id",
        "status",
        "msisdn",
        "messageId",
        "deviceId",
        "payload",
        "sim_slot",
        "timestamp",
        "MessageSid",
        "Body",
        "From",
        "To",
        "MessageStatus",
    ]
)
shaped = st.dictionaries(field_names, json_values, max_size=8)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
        "application/json; charset=utf-8",
    ]
)


@FUZZ
@given(
    connector=st.sampled_from(["simulator", "mysmsgate", "smsgate", "twilio", "vonage"]),
    suffix=st.sampled_from(["", "/incoming", "/status"]),
    body=bodies,
    content_type=content_types,
    sign=st.booleans(),
)
def test_ingress_never_500(
    rig: Rig, connector: str, suffix: str, body: bytes, content_type: str, sign: bool
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    if sign and connector == "simulator":  # a valid signature, so the parser meets the junk
        headers.update(sign_request(SIM_SECRET, body, datetime.now(UTC)))
    url = f"/webhooks/{rig.things['channels'][connector]}{suffix}"
    if connector == "vonage" and sign:
        url += "?token=wrong"
    assert_clean(rig.call("POST", url, content=body, headers=headers))


send_fields = st.fixed_dictionaries(
    {},
    optional={
        "to": json_values | st.sampled_from(["+15550001234", "5550001234", "+44 7700 900123"]),
        "message": json_values | st.text(max_size=1700),
        "channel_id": json_values,
        "device_id": json_values,
        "sim_slot": json_values,
        "idempotency_key": json_values,
    },
)


@FUZZ
@given(payload=send_fields | json_values, raw=st.none() | st.binary(max_size=100))
def test_send_never_500(rig: Rig, payload: Any, raw: bytes | None) -> None:
    content = raw if raw is not None else json.dumps(payload).encode()
    headers = {**rig.things["headers"], "content-type": "application/json"}
    assert_clean(rig.call("POST", "/api/v1/send", content=content, headers=headers))


@FUZZ
@given(
    method=st.sampled_from(["POST", "PATCH"]),
    payload=st.fixed_dictionaries(
        {},
        optional={
            "connector": json_values
            | st.sampled_from(["simulator", "twilio", "smsgate", "vonage"]),
            "name": json_values,
            "config": json_values
            | st.dictionaries(field_names | st.text(max_size=10), json_values),
            "webhook_secret": json_values,
            "auth_mode": json_values | st.sampled_from(["signature", "token"]),
            "phone_number": json_values,
            "enabled": json_values,
        },
    )
    | json_values,
)
def test_channels_never_500(rig: Rig, method: str, payload: Any) -> None:
    url = (
        "/api/v1/channels"
        if method == "POST"
        else f"/api/v1/channels/{rig.things['channels']['twilio']}"
    )
    assert_clean(rig.call(method, url, json=payload, headers=rig.things["headers"]))


@FUZZ
@given(
    path=st.sampled_from(
        ["/api/v1/messages", "/api/v1/contacts", "/api/v1/devices", "/api/v1/channels"]
    ),
    params=st.dictionaries(
        st.sampled_from(
            ["limit", "cursor", "direction", "contact", "channel_id", "status", "q", "opted_out"]
        ),
        st.text(max_size=20) | integers.map(str),
        max_size=4,
    ),
    item=st.none() | st.text(max_size=40),
)
def test_reads_never_500(rig: Rig, path: str, params: dict[str, str], item: str | None) -> None:
    url = path if item is None else f"{path}/{quote(item, safe='') or 'x'}"
    assert_clean(rig.call("GET", url, params=params, headers=rig.things["headers"]))


@FUZZ
@given(
    # Every integer path or query parameter of the API.
    route=st.sampled_from(
        [
            "/api/v1/flows/{flow}/versions/{n}",
            "/api/v1/flows/{flow}/export?version={n}",
            "/api/v1/runs?limit={n}",
            "/api/v1/messages?limit={n}",
            "/api/v1/contacts?limit={n}",
            "/api/v1/endpoints?limit={n}",
            "/api/v1/deliveries?limit={n}",
        ]
    ),
    number=integers.map(str) | st.text(max_size=12),
)
def test_integer_parameters_never_500(rig: Rig, route: str, number: str) -> None:
    url = route.format(flow=rig.things["flow"], n=quote(number, safe="") or "1")
    assert_clean(rig.call("GET", url, headers=rig.things["headers"]))


@FUZZ
@given(
    target=st.sampled_from(["contacts", "devices"]),
    payload=st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "tags": json_values | st.lists(st.text(max_size=70), max_size=5),
            "fields": json_values | st.dictionaries(st.text(max_size=10), json_values),
            "opted_out": json_values,
            "rate_limit_per_min": json_values,
        },
    )
    | json_values,
)
def test_contact_and_device_patches_never_500(rig: Rig, target: str, payload: Any) -> None:
    if target == "contacts":
        url = "/api/v1/contacts/+15550001234"
        rig.run(_ensure_contact(rig.hub))
    else:
        url = "/api/v1/devices/dev_missing"
    assert_clean(rig.call("PATCH", url, json=payload, headers=rig.things["headers"]))


async def _ensure_contact(hub: Hub) -> None:
    from hub.services.contacts import get_or_create_contact

    async with hub.db.write() as session:
        await get_or_create_contact(session, "+15550001234")
