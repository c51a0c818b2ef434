"""The public event contract: what each event type's ``data`` holds, built in one place.

Every event the hub publishes (to webhook endpoints, REST hooks and flow triggers) is
``{"id", "type", "timestamp", "data"}`` (:func:`envelope`); ``data`` is one of the
TypedDicts below, and every producer builds it with the function next to it — so a
field is added once and reaches every event of its type. ``docs/events.md`` documents
them field by field (a test checks that it names every field defined here).

The flow engine reads a subset of the ``sms.*`` shapes (``flows.SmsEventData``); these
are supersets of it. ``device`` is a :class:`~flows.ports.DeviceRef` (the hub's id, the
gateway's own id, the name; all null for gateways without devices), ``channel`` a
:class:`~flows.ports.ChannelRef` (id, name, connector).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict

# The engine reads these two exactly as published, so they are defined once, in its ports.
from flows.ports import ChannelRef, DeviceRef
from hub.context import ChannelRuntime
from hub.models import Channel, Device

__all__ = [
    "EVENT_TYPES",
    "BroadcastData",
    "ChannelRef",
    "ConcatPartsRef",
    "DeviceRef",
    "DeviceStatusData",
    "EndpointDisabledData",
    "FlowRunData",
    "GatewayReportData",
    "MessageLike",
    "SmsReceivedData",
    "SmsStatusData",
    "broadcast",
    "channel_ref",
    "device_ref",
    "device_status",
    "endpoint_disabled",
    "envelope",
    "flow_run",
    "gateway_report",
    "iso",
    "sms_received",
    "sms_status",
]

#: The event types a subscriber can ask for.
EVENT_TYPES = (
    "sms.received",
    "sms.sent",
    "sms.delivered",
    "sms.failed",
    "flow.run.completed",
    "flow.run.failed",
    "endpoint.disabled",
    "broadcast.started",
    "broadcast.completed",
    "device.offline",
    "device.online",
)


class ConcatPartsRef(TypedDict):
    """``sms.received`` of a long SMS the hub joined from its parts (hub.services.concat)."""

    #: Parts the message has.
    total: int
    #: Parts that arrived (fewer than ``total`` when it was released incomplete).
    received: int
    #: Numbers (1-based) of the parts that did not arrive in time.
    missing: list[int]
    #: The gateway's ids of the parts that arrived, in part order.
    provider_message_ids: list[str | None]


SmsReceivedData = TypedDict(
    "SmsReceivedData",
    {
        "message_id": str,
        "from": str,
        "to": str | None,
        "body": str,
        "channel_id": str,
        "device_id": str | None,
        "sim_slot": int | None,
        "segments": int,
        "encoding": str,
        "received_at": str,
        "contact_id": str,
        "broadcast_id": str | None,
        "parts": ConcatPartsRef | None,
        "incomplete": bool,
        "device": DeviceRef,
        "channel": ChannelRef,
    },
)

SmsStatusData = TypedDict(
    "SmsStatusData",
    {
        "message_id": str,
        "direction": str,
        "status": str,
        "from": str | None,
        "to": str | None,
        "body": str,
        "channel_id": str,
        "device_id": str | None,
        "sim_slot": int | None,
        "segments": int,
        "encoding": str,
        "contact_id": str,
        "provider_message_id": str | None,
        "provider_status": str | None,
        "error": str | None,
        # True when the gateway said it credited the send back (MySMSGate's ``refunded``);
        # None when it says nothing about refunds.
        "refunded": bool | None,
        "device": DeviceRef,
        "channel": ChannelRef,
    },
)


class FlowRunData(TypedDict):
    """``flow.run.completed`` / ``flow.run.failed``: a run that has ended."""

    run_id: str
    flow_id: str
    flow_version: int
    status: str
    error: str | None
    #: The contact as the run saw it (phone, opted_out, tags, fields), if any.
    contact: Mapping[str, Any] | None
    vars: Mapping[str, Any]
    finished_at: str | None
    #: Failed runs: the type of the trigger node that started the run (a run started by
    #: ``trigger.run_failed`` starts no error flow when it fails); null for completed runs.
    trigger_node_type: str | None
    #: Failed runs: the node and node type of the step that failed (null when the run
    #: failed outside a step: step limit, missing flow); null for completed runs.
    failed_node_id: str | None
    failed_node_type: str | None


class BroadcastData(TypedDict):
    """``broadcast.started`` / ``broadcast.completed``: a broadcast began or ended."""

    broadcast_id: str
    name: str
    #: running (started), completed or cancelled (completed).
    status: str
    channel_id: str | None
    flow_id: str | None
    #: The counts as ``GET /api/v1/broadcasts/{id}`` shows them at that moment.
    counts: Mapping[str, Any]
    started_at: str | None
    finished_at: str | None


class EndpointDisabledData(TypedDict):
    """``endpoint.disabled``: a webhook endpoint was switched off after failing."""

    endpoint_id: str
    url: str
    description: str
    reason: str
    failing_since: str | None
    disabled_at: str


class DeviceStatusData(TypedDict):
    """``device.offline`` / ``device.online``: a phone went silent, or was heard again."""

    device_id: str
    channel_id: str
    status: str  # offline or online
    last_seen_at: str | None  # when anything (an SMS, a report, a ping) last came from it
    offline_at: str | None  # when it was announced offline (device.online: gone since then)
    offline_after_s: float  # SMSHUB_DEVICE_OFFLINE_AFTER_S, the silence that makes it offline
    device: DeviceRef
    channel: ChannelRef


GatewayReportData = TypedDict(
    "GatewayReportData",
    {
        "message_id": str | None,
        "provider_message_id": str | None,
        "status": str,
        "provider_status": str | None,
        "error": str | None,
        "from": str | None,
        "to": str | None,
        "body": str | None,
        "channel_id": str,
        "device_id": str | None,
        "sim_slot": int | None,
        "contact_id": str | None,
    },
)
"""A gateway's delivery report as stored in the events table (kept for history, never
published: subscribers get the message's status event instead)."""


class MessageLike(Protocol):
    """What an ``sms.*`` event reads of a message (a table row or the store's MessageRow)."""

    id: str
    direction: str
    status: str
    from_number: str | None
    to_number: str | None
    body: str
    channel_id: str
    device_id: str | None
    sim_slot: int | None
    segments: int
    encoding: str
    contact_id: str
    provider_message_id: str | None
    error: str | None


def iso(at: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z."""
    if at.tzinfo is not None and at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.isoformat(timespec="milliseconds")[:23] + "Z"  # a third of strftime's cost


def envelope(event_id: str, type_: str, at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The public event shape: id, type, timestamp, data."""
    return {"id": event_id, "type": type_, "timestamp": iso(at), "data": dict(data)}


def channel_ref(channel: Channel | ChannelRuntime | None, channel_id: str = "") -> ChannelRef:
    """A channel (row or runtime) as events name it; an unknown one keeps its id."""
    if channel is None:
        return {"id": channel_id, "name": "", "connector": ""}
    connector = channel.connector if isinstance(channel, Channel) else channel.connector.name
    return {"id": channel.id, "name": channel.name, "connector": connector}


def device_ref(device: Device | None) -> DeviceRef:
    """A device row as events name it; all null when the SMS had no device."""
    if device is None:
        return {"id": None, "gateway_id": None, "name": None}
    return {"id": device.id, "gateway_id": device.external_id, "name": device.name or None}


def sms_received(
    *,
    message_id: str,
    sender: str,
    recipient: str | None,
    body: str,
    sim_slot: int | None,
    segments: int,
    encoding: str,
    received_at: datetime,
    contact_id: str,
    channel: ChannelRef,
    device: DeviceRef,
    broadcast_id: str | None = None,
    parts: ConcatPartsRef | None = None,
) -> SmsReceivedData:
    """``sms.received``: an inbound SMS as the gateway handed it over (``broadcast_id``:
    the broadcast it replies to, hub.services.broadcasts.reply_links; ``parts``: the parts
    a long SMS was joined from, hub.services.concat)."""
    return {
        "message_id": message_id,
        "from": sender,
        "to": recipient,
        "body": body,
        "channel_id": channel["id"],
        "device_id": device["id"],
        "sim_slot": sim_slot,
        "segments": segments,
        "encoding": encoding,
        "received_at": iso(received_at),
        "contact_id": contact_id,
        "broadcast_id": broadcast_id,
        "parts": parts,
        "incomplete": parts is not None and parts["received"] < parts["total"],
        "device": device,
        "channel": channel,
    }


def sms_status(
    message: MessageLike,
    *,
    provider_status: str | None,
    channel: ChannelRef,
    device: DeviceRef,
    refunded: bool | None = None,
) -> SmsStatusData:
    """``sms.sent`` / ``sms.delivered`` / ``sms.failed``: an outbound message's new status."""
    return {
        "message_id": message.id,
        "direction": message.direction,
        "status": message.status,
        "from": message.from_number,
        "to": message.to_number,
        "body": message.body,
        "channel_id": message.channel_id,
        "device_id": message.device_id,
        "sim_slot": message.sim_slot,
        "segments": message.segments,
        "encoding": message.encoding,
        "contact_id": message.contact_id,
        "provider_message_id": message.provider_message_id,
        "provider_status": provider_status,
        "error": message.error,
        "refunded": refunded,
        "device": device,
        "channel": channel,
    }


def flow_run(
    *,
    run_id: str,
    flow_id: str,
    flow_version: int,
    status: str,
    error: str | None,
    contact: Mapping[str, Any] | None,
    vars: Mapping[str, Any],
    finished_at: datetime | None,
    trigger_node_type: str | None = None,
    failed_node_id: str | None = None,
    failed_node_type: str | None = None,
) -> FlowRunData:
    """``flow.run.completed`` / ``flow.run.failed``."""
    return {
        "run_id": run_id,
        "flow_id": flow_id,
        "flow_version": flow_version,
        "status": status,
        "error": error,
        "contact": contact,
        "vars": vars,
        "finished_at": iso(finished_at) if finished_at else None,
        "trigger_node_type": trigger_node_type,
        "failed_node_id": failed_node_id,
        "failed_node_type": failed_node_type,
    }


def broadcast(
    *,
    broadcast_id: str,
    name: str,
    status: str,
    channel_id: str | None,
    flow_id: str | None,
    counts: Mapping[str, Any],
    started_at: datetime | None,
    finished_at: datetime | None,
) -> BroadcastData:
    """``broadcast.started`` / ``broadcast.completed``."""
    return {
        "broadcast_id": broadcast_id,
        "name": name,
        "status": status,
        "channel_id": channel_id,
        "flow_id": flow_id,
        "counts": dict(counts),
        "started_at": iso(started_at) if started_at else None,
        "finished_at": iso(finished_at) if finished_at else None,
    }


def endpoint_disabled(
    *,
    endpoint_id: str,
    url: str,
    description: str,
    reason: str,
    failing_since: datetime | None,
    disabled_at: datetime,
) -> EndpointDisabledData:
    """``endpoint.disabled``."""
    return {
        "endpoint_id": endpoint_id,
        "url": url,
        "description": description,
        "reason": reason,
        "failing_since": iso(failing_since) if failing_since else None,
        "disabled_at": iso(disabled_at),
    }


def device_status(
    *,
    status: str,
    device: DeviceRef,
    channel: ChannelRef,
    last_seen_at: datetime | None,
    offline_at: datetime | None,
    offline_after_s: float,
) -> DeviceStatusData:
    """``device.offline`` / ``device.online``."""
    return {
        "device_id": device["id"] or "",
        "channel_id": channel["id"],
        "status": status,
        "last_seen_at": iso(last_seen_at) if last_seen_at else None,
        "offline_at": iso(offline_at) if offline_at else None,
        "offline_after_s": offline_after_s,
        "device": device,
        "channel": channel,
    }


def gateway_report(
    *,
    channel_id: str,
    status: str,
    provider_message_id: str | None,
    provider_status: str | None,
    error: str | None,
    message: MessageLike | None,
    from_number: str | None,
    to_number: str | None,
    sim_slot: int | None,
) -> GatewayReportData:
    """A gateway's delivery report, matched to its message when that is known."""
    return {
        "message_id": message.id if message else None,
        "provider_message_id": provider_message_id,
        "status": status,
        "provider_status": provider_status,
        "error": error,
        "from": message.from_number if message else from_number,
        "to": message.to_number if message else to_number,
        "body": message.body if message else None,
        "channel_id": channel_id,
        "device_id": message.device_id if message else None,
        "sim_slot": message.sim_slot if message else sim_slot,
        "contact_id": message.contact_id if message else None,
    }
