"""The Make scenario blueprint (integrations/make) names our real route, fields and events."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from hub.delivery.presets import shape_body
from hub.delivery.samples import sample_event

ROOT = Path(__file__).parents[2]
MAKE = ROOT / "integrations" / "make"
BLUEPRINT = MAKE / "smshub-reply-to-sms.blueprint.json"
# {{1.from}}: module 1's field "from" (Make's mapping syntax).
MAPPING = re.compile(r"\{\{(\d+)\.([A-Za-z0-9_]+)\}\}")


@pytest.fixture(scope="module")
def blueprint() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(BLUEPRINT.read_text())
    return loaded


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    """The hub's OpenAPI document, as scripts/gen_api_reference.py builds it."""
    spec = importlib.util.spec_from_file_location(
        "gen_api_reference", ROOT / "scripts" / "gen_api_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document: dict[str, Any] = module.build_document()
    return document


def module(blueprint: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [m for m in blueprint["flow"] if m["module"] == name]
    return found


def make_fields() -> set[str]:
    """What an endpoint with preset make posts for sms.received (the flat shape)."""
    event = sample_event("sms.received", datetime(2026, 1, 1, tzinfo=UTC))
    return set(shape_body("make", event))


def test_an_instant_webhook_trigger_then_an_http_request(blueprint: dict[str, Any]) -> None:
    # Make's module ids: Webhooks → Custom webhook, HTTP → Make a request (v3).
    assert [(m["id"], m["module"], m["version"]) for m in blueprint["flow"]] == [
        (1, "gateway:CustomWebHook", 1),
        (2, "http:ActionSendData", 3),
    ]
    assert blueprint["metadata"]["instant"] is True


def test_the_http_module_calls_post_send_with_bearer_auth_and_real_fields(
    blueprint: dict[str, Any], openapi: dict[str, Any]
) -> None:
    mapper = module(blueprint, "http:ActionSendData")["mapper"]
    path = urlsplit(mapper["url"]).path
    assert mapper["method"] == "post"
    assert "post" in openapi["paths"][path]  # a route the hub has
    assert mapper["headers"] == [{"name": "Authorization", "value": "Bearer YOUR_SMSHUB_API_KEY"}]
    assert mapper["bodyType"] == "raw" and mapper["contentType"] == "application/json"

    body = json.loads(MAPPING.sub("x", mapper["data"]))
    operation = openapi["paths"][path]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(body) <= set(schema["properties"])
    assert set(schema["required"]) <= set(body)


def test_it_maps_only_fields_the_make_preset_sends(blueprint: dict[str, Any]) -> None:
    fields = make_fields()
    text = json.dumps(blueprint["flow"])
    mapped = {(int(m), field) for m, field in MAPPING.findall(text)}
    assert mapped and all(m == 1 for m, _ in mapped)
    assert {field for _, field in mapped} <= fields
    interface = module(blueprint, "gateway:CustomWebHook")["metadata"]["interface"]
    assert {item["name"] for item in interface} <= fields
    assert {"event_id", "from", "body", "channel_id"} <= {item["name"] for item in interface}


def test_the_readme_walks_through_what_the_blueprint_needs(blueprint: dict[str, Any]) -> None:
    readme = (MAKE / "README.md").read_text()
    for needed in (
        BLUEPRINT.name,
        "gateway:CustomWebHook",
        "http:ActionSendData",
        "POST /api/v1/send",
        '"preset": "make"',
        "YOUR_SMSHUB_API_KEY",
        "YOUR-HUB.example.com",
        "idempotency_key",
    ):
        assert needed in readme, needed
    data = module(blueprint, "http:ActionSendData")["mapper"]["data"]
    shown = re.search(r"```json\n(.*?)```", readme.split("POST /api/v1/send`:")[1], re.S)
    assert shown is not None
    assert json.loads(shown.group(1)) == json.loads(data)  # the body shown is the body imported
