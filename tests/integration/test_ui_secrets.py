"""Settings → Secrets: add (errors next to the fields), list (names, never values), replace
a value, delete; the nav links the page."""

from __future__ import annotations

import re

from hub.context import Hub
from hub.services import secrets
from tests.e2e.helpers import Web, error_next_to, text_of

VALUE = "sk_live_Qm3vT8pZ1xR7"


async def test_add_list_replace_and_delete_a_secret(hub: Hub, web: Web) -> None:
    page = await web.get("/settings/secrets")
    assert page.status_code == 200 and "No secrets" in page.text
    assert 'href="/settings/secrets"' in page.text  # the nav entry
    bad = await web.post("/settings/secrets", {"name": "zap token", "value": ""})
    assert bad.status_code == 422
    assert error_next_to(bad.text, "value")
    bad = await web.post("/settings/secrets", {"name": "zap token", "value": VALUE})
    assert bad.status_code == 422 and "A-Z" in error_next_to(bad.text, "name")
    assert VALUE not in bad.text  # a refused form does not echo the value either
    added = await web.post("/settings/secrets", {"name": "ZAP_TOKEN", "value": VALUE})
    assert added.status_code == 303 and added.headers["location"] == "/settings/secrets"
    taken = await web.post("/settings/secrets", {"name": "ZAP_TOKEN", "value": "other"})
    assert taken.status_code == 422 and "already taken" in error_next_to(taken.text, "name")
    listing = await web.get("/settings/secrets")
    assert VALUE not in listing.text
    row = re.search(r'<tr data-secret="ZAP_TOKEN">.*?</tr>', listing.text, re.S)
    assert row is not None and "{{ secrets.ZAP_TOKEN }}" in text_of(row.group(0))
    assert "********" in row.group(0)

    empty = await web.post("/settings/secrets/ZAP_TOKEN/replace", {"value": " "})
    assert empty.status_code == 422 and 'data-error-for="ZAP_TOKEN.value"' in empty.text
    replaced = await web.post("/settings/secrets/ZAP_TOKEN/replace", {"value": "new-value-2"})
    assert replaced.status_code == 303
    assert await secrets.values_of(hub, ["ZAP_TOKEN"]) == {"ZAP_TOKEN": "new-value-2"}
    assert "new-value-2" not in (await web.get("/settings/secrets")).text

    assert (await web.post("/settings/secrets/ZAP_TOKEN/delete")).status_code == 303
    assert await secrets.list_secrets(hub) == []
    assert (await web.post("/settings/secrets/ZAP_TOKEN/delete")).status_code == 404
