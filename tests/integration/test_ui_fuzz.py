"""Random input to every form and query of the UI, signed in with a valid CSRF token: the
answer is a page or a redirect, a 4xx with a message, never a 500 (hypothesis)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.context import Hub
from hub.delivery.endpoints import create_endpoint
from hub.services.bootstrap import join_example
from hub.services.channels import create_channel
from hub.services.flows import import_flow
from hub.services.runs import list_runs
from tests.e2e.helpers import page_csrf, set_up_admin
from tests.fuzzing import Rig, hub_rig
from tests.fuzzing import assert_clean as assert_no_500
from tests.helpers import SimPhone

SECRET = "fuzz-simulator-secret"
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def _setup(hub: Hub, client: httpx.AsyncClient) -> dict[str, Any]:
    channel = await create_channel(
        hub,
        connector="simulator",
        name="Simulator",
        config={"phone_number": "+15550100000", "delivery_delay_s": 0},
        webhook_secret=SECRET,
    )
    view, _ = await import_flow(hub, join_example(channel.id), publish_it=True)
    csrf = await set_up_admin(client)
    await SimPhone(client, channel.id, SECRET, "+15550100000").says("+15550001234", "JOIN")
    await hub.queue.drain(timeout=20)  # type: ignore[attr-defined]
    runs, _ = await list_runs(hub, limit=1, cursor=None)
    endpoint = await create_endpoint(
        hub, url="http://127.0.0.1:9/hook", event_types=["*"], description="fuzz"
    )
    contact = (await client.get("/api/v1/contacts/+15550001234")).json()
    ids = {
        "channel": channel.id,
        "flow": view.flow.id,
        "run": runs[0].id,
        "contact": contact["id"],
        "endpoint": endpoint.id,
    }
    return {"csrf": csrf, "ids": ids}


@pytest.fixture
def rig(tmp_path: Path, database_url: str) -> Iterator[Rig]:
    with hub_rig(tmp_path, database_url, _setup) as made:
        yield made


def assert_clean(resp: httpx.Response) -> None:
    """No 5xx (UI errors are pages, not JSON)."""
    assert_no_500(resp, json_errors=False)


#: Text as users and attackers type it: unicode, control characters, markup, huge.
nasty_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            "+15550001234",
            "<script>alert(1)</script>",
            "{{ 7 * 7 }}",
            "'; DROP TABLE users; --",
            "\x00\x01\x7f",
            "ü" * 3000,
            "9" * 400,
            "-1",
            "1e309",
            "NaN",
            "true",
            "on",
            "../../etc/passwd",
            "ch_nope",
        ]
    ),
)

FORM_FIELDS = {
    "/flows": ["name", "example"],
    "/flows/{flow}/enabled": ["enabled", "back"],
    "/runs/{run}/replay": ["mode"],
    "/conversations/new": ["to", "message", "channel_id"],
    "/conversations/simulate": ["channel_id", "from", "text"],
    "/conversations/{contact}/{channel}/send": ["message"],
    "/channels/new/simulator": [
        "name",
        "auth_mode",
        "phone_number",
        "cfg.phone_number",
        "cfg.delivery_delay_s",
        "cfg.failure_rate",
        "cfg.device_id",
        "cfg.sim_slots",
    ],
    "/channels/new/twilio": ["name", "cfg.account_sid", "cfg.auth_token", "cfg.timeout_s"],
    "/channels/new/smsgate": ["name", "cfg.mode", "cfg.username", "cfg.password", "cfg.base_url"],
    "/channels/{channel}/edit": ["name", "enabled", "auth_mode", "cfg.delivery_delay_s"],
    "/channels/{channel}/simulate": ["from", "text"],
    "/settings/api-keys": ["name"],
    "/outbound": ["url", "event_types", "preset", "headers", "rate_limit_per_s", "description"],
    "/outbound/{endpoint}/edit": ["url", "event_types", "preset", "headers", "description"],
    "/outbound/{endpoint}/test": ["event_type"],
    "/outbound/{endpoint}/replay": ["since"],
    "/outbound/{endpoint}/enabled": ["enabled"],
}


@st.composite
def forms(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    path = draw(st.sampled_from(sorted(FORM_FIELDS)))
    names = FORM_FIELDS[path]
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=12), nasty_text, max_size=2))
    data = {name: draw(nasty_text) for name in chosen}
    return path, {**extra, **data}


@FUZZ
@given(form=forms())
def test_form_posts_never_500(rig: Rig, form: tuple[str, dict[str, str]]) -> None:
    path, data = form
    url = path.format(**rig.things["ids"])
    resp = rig.call("POST", url, data={**data, "_csrf": rig.things["csrf"]})
    assert_clean(resp)
    if resp.status_code == 422:
        assert "error-text" in resp.text or "alert-error" in resp.text


@FUZZ
@given(
    path=st.sampled_from(
        ["/flows", "/conversations/simulate", "/channels/new/twilio", "/settings/api-keys"]
    ),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "application/json",
            "text/plain",
        ]
    ),
)
def test_raw_bodies_never_500(rig: Rig, path: str, body: bytes, content_type: str) -> None:
    resp = rig.call(
        "POST",
        path,
        content=body,
        headers={"content-type": content_type, "X-CSRF-Token": rig.things["csrf"]},
    )
    assert_clean(resp)


@FUZZ
@given(
    path=st.sampled_from(
        ["/runs", "/contacts", "/conversations", "/conversations/threads", "/outbound/deliveries"]
    ),
    params=st.dictionaries(
        st.sampled_from(
            ["flow", "status", "contact", "cursor", "q", "active", "endpoint", "event_type", "x"]
        ),
        nasty_text,
        max_size=4,
    ),
)
def test_queries_never_500(rig: Rig, path: str, params: dict[str, str]) -> None:
    clean = {k: v[:500] for k, v in params.items()}
    assert_clean(rig.call("GET", path, params=clean))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | nasty_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(
    payload=st.fixed_dictionaries(
        {},
        optional={
            "document": json_values
            | st.fixed_dictionaries(
                {"name": nasty_text},
                optional={"nodes": json_values, "edges": json_values},
            ),
            "mode": st.sampled_from(["sms", "http", "x"]) | json_values,
            "text": json_values,
            "from": json_values,
            "channel_id": json_values,
            "body": json_values,
        },
    )
)
def test_test_run_never_500(rig: Rig, payload: dict[str, Any]) -> None:
    resp = rig.call(
        "POST",
        f"/flows/{rig.things['ids']['flow']}/test-run",
        json=payload,
        headers={"X-CSRF-Token": rig.things["csrf"]},
    )
    assert_clean(resp)
    assert resp.headers["content-type"].startswith("application/json")


@FUZZ
@given(segment=nasty_text)
def test_odd_ids_in_paths_never_500(rig: Rig, segment: str) -> None:
    from urllib.parse import quote

    part = quote(segment, safe="") or "x"
    for method, path in (
        ("GET", f"/flows/{part}"),
        ("GET", f"/runs/{part}"),
        ("GET", f"/channels/{part}"),
        ("GET", f"/conversations/{part}/{part}"),
        ("POST", f"/runs/{part}/cancel"),
        ("POST", f"/settings/api-keys/{part}/revoke"),
        ("GET", f"/outbound/{part}"),
        ("GET", f"/outbound/deliveries/{part}"),
        ("POST", f"/outbound/deliveries/{part}/retry"),
    ):
        assert_clean(rig.call(method, path, data={"_csrf": rig.things["csrf"]}))


def test_the_rig_is_signed_in(rig: Rig) -> None:
    page = rig.call("GET", "/")
    assert page.status_code == 200 and page_csrf(page.text) == rig.things["csrf"]
