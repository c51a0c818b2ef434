"""Realistic sample events: what ``/endpoints/{id}/test`` sends and what ``/hooks/sample``
shows when the hub has not seen an event of that type yet (Zapier needs one to map fields).

They are built by the same functions as real events (``hub/event_data.py``), so a sample
has exactly the fields a real event of its type has."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hub.event_data import (
    ChannelRef,
    DeviceRef,
    broadcast,
    device_status,
    endpoint_disabled,
    envelope,
    flow_run,
    sms_received,
    sms_status,
)
from hub.ids import new_id
from hub.models import Message

_CHANNEL: ChannelRef = {
    "id": "ch_sample00000000000000000000",
    "name": "Shop phone",
    "connector": "smsgate",
}
_DEVICE: DeviceRef = {
    "id": "dev_sample0000000000000000000",
    "gateway_id": "sample-gateway-device-id",
    "name": "Counter phone",
}
_CONTACT = "ct_sample00000000000000000000"
_THEM, _US = "+15550001234", "+15559876543"
_BROADCAST_COUNTS = {
    "recipients": 500,
    "skipped_opted_out": 20,
    "skipped_blocked": 0,
    "skipped": 20,
    "queued": 0,
    "sent": 30,
    "delivered": 440,
    "failed": 10,
    "cancelled": 0,
    "replied": 37,
    "runs": {},
}


def _outbound(status: str, at: datetime) -> Message:
    return Message(
        id="msg_sample000000000000000000",
        direction="outbound",
        channel_id=_CHANNEL["id"],
        device_id=_DEVICE["id"],
        sim_slot=0,
        contact_id=_CONTACT,
        from_number=_US,
        to_number=_THEM,
        body="Welcome! Reply STOP to opt out.",
        segments=1,
        encoding="GSM-7",
        status=status,
        provider_message_id="sample-provider-id",
        error="NO_SIGNAL" if status == "failed" else None,
        created_at=at,
        updated_at=at,
    )


def sample_data(event_type: str, at: datetime) -> dict[str, Any]:
    """The ``data`` of a made-up event of ``event_type`` (empty for an unknown type)."""
    if event_type == "sms.received":
        return dict(
            sms_received(
                message_id="msg_sample000000000000000000",
                sender=_THEM,
                recipient=_US,
                body="JOIN news",
                sim_slot=0,
                segments=1,
                encoding="GSM-7",
                received_at=at,
                contact_id=_CONTACT,
                channel=_CHANNEL,
                device=_DEVICE,
            )
        )
    if event_type in ("sms.sent", "sms.delivered", "sms.failed"):
        status = event_type.removeprefix("sms.")
        message = _outbound(status, at)
        return dict(sms_status(message, provider_status=status, channel=_CHANNEL, device=_DEVICE))
    if event_type in ("flow.run.completed", "flow.run.failed"):
        failed = event_type.endswith("failed")
        return dict(
            flow_run(
                run_id="run_sample0000000000000000000",
                flow_id="flw_sample000000000000000000",
                flow_version=1,
                status="failed" if failed else "completed",
                error="zap: HTTP 500" if failed else None,
                contact={"phone": _THEM, "opted_out": False, "tags": [], "fields": {}},
                vars={},
                finished_at=at,
                trigger_node_type="trigger.sms_received" if failed else None,
                failed_node_id="zap" if failed else None,
                failed_node_type="http.request" if failed else None,
            )
        )
    if event_type.startswith("broadcast."):
        return _broadcast_sample(event_type, at)
    if event_type in ("device.offline", "device.online"):
        return _device_sample(event_type, at)
    if event_type == "endpoint.disabled":
        return dict(
            endpoint_disabled(
                endpoint_id="ep_sample00000000000000000000",
                url="https://example.com/webhooks/sms",
                description="CRM",
                reason="every delivery failed for 5.0 days",
                failing_since=at - timedelta(days=5),
                disabled_at=at,
            )
        )
    return {}


def _broadcast_sample(event_type: str, at: datetime) -> dict[str, Any]:
    done = event_type.endswith("completed")
    return dict(
        broadcast(
            broadcast_id="bc_sample00000000000000000000",
            name="Spring sale",
            status="completed" if done else "running",
            channel_id=_CHANNEL["id"],
            flow_id=None,
            counts=_BROADCAST_COUNTS if done else {**_BROADCAST_COUNTS, "queued": 480},
            started_at=at - timedelta(minutes=30) if done else at,
            finished_at=at if done else None,
        )
    )


def _device_sample(event_type: str, at: datetime) -> dict[str, Any]:
    online = event_type.endswith("online")
    return dict(
        device_status(
            status="online" if online else "offline",
            device=_DEVICE,
            channel=_CHANNEL,
            last_seen_at=at if online else at - timedelta(minutes=15),
            offline_at=at - timedelta(hours=2) if online else at,
            offline_after_s=900.0,
        )
    )


def sample_event(event_type: str, at: datetime) -> dict[str, Any]:
    """A whole made-up event (fresh id) in the public event shape."""
    return envelope(new_id("evt"), event_type, at, sample_data(event_type, at))
