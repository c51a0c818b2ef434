"""Presets for the automation services people point webhooks at: Zapier, Make, n8n.

A preset does two things, for webhook endpoints and for the flow node ``http.request``:

* :func:`check_url` says, in words, when a URL does not look like that service's webhook
  URL (a Make URL pasted under "Zapier", a missing ``/webhook/`` in an n8n URL…).
* :func:`shape_body` turns the body into the flat object those editors map most easily.
  For a public event (``{"id", "type", "timestamp", "data": {…}}``) that is::

      {"event_id": "evt_…", "event_type": "sms.received", "timestamp": "…",
       "message_id": "msg_…", "from": "+1555…", "body": "JOIN news", …}

  i.e. the envelope's fields renamed ``event_*`` and ``data``'s fields lifted to the top
  level (a data field that clashes with those names keeps a ``data__`` prefix). Deeper
  objects are flattened with ``__`` between the keys (``{"a": {"b": 1}}`` →
  ``{"a__b": 1}``), the convention Zapier uses itself; lists are kept as they are. This
  matches the default body of the flow node ``http.request`` for these presets.
  ``generic`` sends the body unchanged.

``mysmsgate`` is a format rather than a service: SMS events as the bodies MySMSGate posts
(:mod:`hub.delivery.mysmsgate_format`), for receivers written against it; any URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from hub.delivery import mysmsgate_format

Preset = Literal["generic", "zapier", "make", "n8n", "mysmsgate"]
#: Every preset name.
PRESETS: tuple[str, ...] = get_args(Preset)
#: Joins the keys of nested objects in flattened bodies (Zapier's own convention).
FLAT_SEPARATOR = "__"

_ZAPIER_HOST = "hooks.zapier.com"
# Catch Hook URLs (/hooks/catch/<account>/<hook>/) and the REST Hook URLs Zapier apps get
# (/hooks/standard/<account>/<hook>/); the trailing slash is optional.
_ZAPIER_PATH = re.compile(r"^/hooks/(catch|standard)/\d+/[A-Za-z0-9]+/?$")
# hook.<region>.make.com (eu1, eu2, us1, us2…), the Celonis-hosted zones, and the old
# Integromat host that still forwards.
_MAKE_HOST = re.compile(
    r"^hook\.(?:[a-z0-9-]+\.make\.com|[a-z0-9-]+\.make\.celonis\.com|integromat\.com)$"
)
_MAKE_PATH = re.compile(r"^/[A-Za-z0-9]+/?$")
# n8n's Webhook node: production /webhook/<path>, editor-listening /webhook-test/<path>.
_N8N_PATH = re.compile(r"/webhook(?:-test)?/[^/].*$")


def check_url(preset: str, url: str) -> list[str]:
    """What is wrong with ``url`` for ``preset``, in words; empty when it looks right."""
    if preset not in PRESETS:
        return [f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}"]
    if preset in ("generic", mysmsgate_format.FORMAT):
        return []
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return ["URL cannot be parsed"]
    problems: list[str] = []
    if parts.scheme != "https" and preset in ("zapier", "make"):
        problems.append(f"{_TITLES[preset]} webhook URLs start with https://")
    if preset == "zapier":
        if host != _ZAPIER_HOST or not _ZAPIER_PATH.match(parts.path):
            problems.append(
                "this does not look like a Zapier Catch Hook URL: expected "
                "https://hooks.zapier.com/hooks/catch/<number>/<id>/ (copy it from the "
                "'Webhooks by Zapier' trigger)"
            )
    elif preset == "make":
        if not _MAKE_HOST.match(host) or not _MAKE_PATH.match(parts.path):
            problems.append(
                "this does not look like a Make custom webhook URL: expected "
                "https://hook.<region>.make.com/<token> (copy it from the 'Custom webhook' "
                "module)"
            )
    elif not _N8N_PATH.search(parts.path):
        problems.append(
            "this does not look like an n8n Webhook node URL: expected "
            "https://<your-n8n>/webhook/<path> (or /webhook-test/<path> while the editor "
            "is listening for a test event)"
        )
    return problems


def infer_preset(url: str) -> Preset:
    """The preset whose URL shape ``url`` has (``generic`` when none fits)."""
    candidates: tuple[Preset, ...] = ("zapier", "make", "n8n")  # services, not formats
    return next((preset for preset in candidates if not check_url(preset, url)), "generic")


def shape_body(preset: str, body: Any) -> Any:
    """The body as ``preset`` sends it (see the module docstring for the flat shape)."""
    if preset == "generic" or not isinstance(body, Mapping):
        return body
    if preset == mysmsgate_format.FORMAT:
        return mysmsgate_format.shape(body)
    if _is_event(body):
        return flatten_event(body)
    return flatten(body)


def flatten_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A public event as one flat object: ``event_id``, ``event_type``, ``timestamp``, data."""
    flat: dict[str, Any] = {
        "event_id": event.get("id"),
        "event_type": event.get("type"),
        "timestamp": event.get("timestamp"),
    }
    for key, value in flatten(event.get("data") or {}).items():
        flat[f"data{FLAT_SEPARATOR}{key}" if key in flat else key] = value
    return flat


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects joined into one level with ``__`` (lists and scalars kept)."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{FLAT_SEPARATOR}{key}" if prefix else str(key)
        if isinstance(item, Mapping) and item:
            flat.update(flatten(item, name))
        else:
            flat[name] = item
    return flat


def _is_event(body: Mapping[str, Any]) -> bool:
    return {"id", "type", "data"} <= set(body) and isinstance(body.get("data"), Mapping)


_TITLES = {"zapier": "Zapier", "make": "Make", "n8n": "n8n"}
