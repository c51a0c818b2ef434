"""Realistic sample events: what ``/endpoints/{id}/test`` sends and what ``/hooks/sample``
shows when the hub has not seen an event of that type yet (Zapier needs one to map fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.ids import new_id
from hub.services.events import envelope, iso

_MESSAGE = {
    "message_id": "msg_sample000000000000000000",
    "channel_id": "ch_sample00000000000000000000",
    "device_id": "dev_sample0000000000000000000",
    "sim_slot": 0,
    "segments": 1,
    "encoding": "GSM-7",
    "contact_id": "ct_sample00000000000000000000",
}


def sample_data(event_type: str, at: datetime) -> dict[str, Any]:
    """The ``data`` of a made-up event of ``event_type``."""
    when = iso(at)
    if event_type == "sms.received":
        return {
            **_MESSAGE,
            "from": "+15550001234",
            "to": "+15559876543",
            "body": "JOIN news",
            "received_at": when,
        }
    if event_type in ("sms.sent", "sms.delivered", "sms.failed"):
        status = event_type.removeprefix("sms.")
        return {
            **_MESSAGE,
            "direction": "outbound",
            "status": status,
            "from": "+15559876543",
            "to": "+15550001234",
            "body": "Welcome! Reply STOP to opt out.",
            "provider_message_id": "sample-provider-id",
            "error": "NO_SIGNAL" if status == "failed" else None,
        }
    if event_type in ("flow.run.completed", "flow.run.failed"):
        failed = event_type.endswith("failed")
        return {
            "run_id": "run_sample0000000000000000000",
            "flow_id": "flow_sample000000000000000000",
            "flow_version": 1,
            "status": "failed" if failed else "completed",
            "error": "HTTP 500" if failed else None,
            "contact": "+15550001234",
            "finished_at": when,
        }
    if event_type == "endpoint.disabled":
        return {
            "endpoint_id": "ep_sample00000000000000000000",
            "url": "https://example.com/webhooks/sms",
            "reason": "failing for 5 days",
            "failing_since": when,
            "disabled_at": when,
        }
    return {}


def sample_event(event_type: str, at: datetime) -> dict[str, Any]:
    """A whole made-up event (fresh id) in the public event shape."""
    return envelope(new_id("evt"), event_type, at, sample_data(event_type, at))
