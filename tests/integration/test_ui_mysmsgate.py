"""Settings → MySMSGate webhooks: the two URLs a MySMSGate user knows become two endpoints
in MySMSGate's format with one secret; a refused URL saves nothing; a blank one removes."""

from __future__ import annotations

import httpx

from hub.context import Hub
from tests.e2e.helpers import Web, error_next_to


async def _mysmsgate_endpoints(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> dict[str, dict[str, object]]:
    resp = await client.get("/api/v1/endpoints", headers=headers)
    assert resp.status_code == 200, resp.text
    found = {}
    for item in resp.json()["items"]:
        if item["format"] == "mysmsgate":
            detail = (await client.get(f"/api/v1/endpoints/{item['id']}", headers=headers)).json()
            found[item["url"]] = detail
    return found


async def test_two_urls_become_two_signed_endpoints_and_a_blank_one_removes_its_own(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], web: Web
) -> None:
    page = await web.get("/settings/mysmsgate")
    assert page.status_code == 200
    assert "Incoming SMS webhook URL" in page.text and "Delivery report webhook URL" in page.text
    incoming, status = "http://127.0.0.1:9/sms/incoming", "http://127.0.0.1:9/sms/status"
    saved = await web.post("/settings/mysmsgate", {"incoming": incoming, "status": status})
    assert saved.status_code == 200 and "data-saved" in saved.text, saved.text
    endpoints = await _mysmsgate_endpoints(client, api_headers)
    assert set(endpoints) == {incoming, status}
    assert endpoints[incoming]["event_types"] == ["sms.received"]
    assert endpoints[status]["event_types"] == ["sms.delivered", "sms.failed", "sms.sent"]
    secret = endpoints[incoming]["secret"]
    assert isinstance(secret, str) and endpoints[status]["secret"] == secret
    assert secret in saved.text  # shown (masked input) for the receiver's code
    # Saving again changes the URL in place: still two endpoints, same secret.
    moved = "http://127.0.0.1:9/v2/incoming"
    await web.post("/settings/mysmsgate", {"incoming": moved, "status": status})
    endpoints = await _mysmsgate_endpoints(client, api_headers)
    assert set(endpoints) == {moved, status}
    assert {e["secret"] for e in endpoints.values()} == {secret}
    # A blank URL removes its endpoint only.
    await web.post("/settings/mysmsgate", {"incoming": moved, "status": ""})
    assert set(await _mysmsgate_endpoints(client, api_headers)) == {moved}


async def test_a_refused_url_is_shown_next_to_its_field_and_nothing_is_saved(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str], web: Web
) -> None:
    resp = await web.post(
        "/settings/mysmsgate",
        {"incoming": "http://127.0.0.1:9/sms/incoming", "status": "ftp://example.com/x"},
    )
    assert resp.status_code == 422
    assert error_next_to(resp.text, "status"), resp.text
    assert await _mysmsgate_endpoints(client, api_headers) == {}
