"""The MySMSGate webhook format: our events as the bodies MySMSGate posts, for code written
against it (the handlers of its integration guide read these fields and nothing else).

An endpoint with ``format: "mysmsgate"`` gets, instead of the Standard Webhooks envelope:

* ``sms.received`` → ``{from, to, message, device_id, sim_slot, timestamp}``;
* ``sms.sent`` / ``sms.delivered`` / ``sms.failed`` →
  ``{message_id, to, status, status_text, device_id, sim_slot, refunded, timestamp}``;

``device_id`` is the gateway's own id of the phone (what MySMSGate users know), ``timestamp``
Unix seconds, ``message_id`` the id ``POST /api/v1/send`` answered (``sms_id``), and
``refunded`` false unless the gateway reported a refund. Other event types keep their
envelope. The body is signed in ``X-Signature``: lowercase hex HMAC-SHA256 of the raw body,
keyed with the endpoint's secret exactly as shown (the ``whsec_…`` text, as UTF-8) — the
Standard Webhooks headers are sent too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["FORMAT", "STATUS_EVENTS", "shape", "signature_header"]

#: The preset value that selects this format (``format: "mysmsgate"`` in the API).
FORMAT = "mysmsgate"
#: The delivery-report events, posted as MySMSGate's delivery reports.
STATUS_EVENTS = frozenset({"sms.sent", "sms.delivered", "sms.failed"})


def _unix(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _device(data: Mapping[str, Any]) -> Any:
    device = data.get("device")
    return device.get("gateway_id") if isinstance(device, Mapping) else None


def shape(event: Mapping[str, Any]) -> Any:
    """The body MySMSGate would post for ``event`` (other events: the event unchanged)."""
    kind = event.get("type")
    data = event.get("data")
    if not isinstance(data, Mapping):
        return event
    if kind == "sms.received":
        return {
            "from": data.get("from"),
            "to": data.get("to"),
            "message": data.get("body"),
            "device_id": _device(data),
            "sim_slot": data.get("sim_slot"),
            "timestamp": _unix(data.get("received_at")) or _unix(event.get("timestamp")),
        }
    if kind in STATUS_EVENTS:
        status = str(data.get("status") or kind.removeprefix("sms."))
        return {
            "message_id": data.get("message_id"),
            "to": data.get("to"),
            "status": status,
            "status_text": data.get("error") or data.get("provider_status") or status.upper(),
            "device_id": _device(data),
            "sim_slot": data.get("sim_slot"),
            "refunded": data.get("refunded") is True,
            "timestamp": _unix(event.get("timestamp")),
        }
    return event


def signature_header(secret: str, body: str) -> dict[str, str]:
    """``X-Signature``: hex HMAC-SHA256 of the body, keyed with the secret's text."""
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"X-Signature": digest}
