"""What a run takes from the event that triggers or answers it: the contact, the reply route.

Events are read through :func:`flows.ports.sms_data`, so the fields used here are the ones
:class:`~flows.ports.SmsEventData` declares (mypy checks the names). The run keeps the
whole event as ``trigger`` (templates see all of it); the executor copies out only the
contact's phone and the route a reply takes (``Run.inbound``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from flows.ports import ContactView, ReplyTo, SmsEventData, sms_data

__all__ = [
    "InboundRoute",
    "ReplyFields",
    "bare_contact",
    "contact_phone_of",
    "event_id",
    "inbound_of",
    "reply_fields",
    "reply_to",
]


class InboundRoute(TypedDict):
    """The shape of ``Run.inbound``: the contact and the route their latest SMS came by."""

    phone: str
    message_id: str | None
    channel_id: str | None
    device_id: str | None
    sim_slot: int | None


# ``from`` is a keyword, hence the functional syntax.
ReplyFields = TypedDict(
    "ReplyFields",
    {
        "body": str | None,
        "from": str | None,
        "to": str | None,
        "message_id": str | None,
        "channel_id": str | None,
        "device_id": str | None,
        "sim_slot": int | None,
        "received_at": str | None,
    },
)
ReplyFields.__doc__ = """What a reply wait's step output shows of the reply (templates read
``steps.<id>.output.body``)."""


def contact_phone_of(event: Mapping[str, Any]) -> str | None:
    """The contact an event is about: the sender of an inbound SMS, the recipient of a
    delivery report; None for other events (HTTP bodies)."""
    data = sms_data(event)
    kind = str(event.get("type") or "")
    phone: str | None  # annotated: see flows.ports.sms_data
    if kind == "sms.received":
        phone = data.get("from")
    elif kind.startswith("sms."):
        phone = data.get("to")
    else:
        return None
    return str(phone) if phone else None


def event_id(event: Mapping[str, Any]) -> str | None:
    """The event's id (a message id for events without one), to remember it by."""
    message_id: str | None = sms_data(event).get("message_id")
    value = event.get("id") or message_id
    return str(value) if value else None


def bare_contact(phone: str | None) -> dict[str, Any] | None:
    """``Run.contact`` for a phone the hub told nothing more about."""
    if not phone:
        return None
    return ContactView(phone=phone).to_dict()


def inbound_of(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reply route an event offers: the sender of an inbound SMS, or the recipient
    (and original route) of a delivery report."""
    phone = contact_phone_of(event)
    if phone is None:
        return None
    data = sms_data(event)
    route: InboundRoute = {
        "phone": phone,
        "message_id": data.get("message_id"),
        "channel_id": data.get("channel_id"),
        "device_id": data.get("device_id"),
        "sim_slot": data.get("sim_slot"),
    }
    return dict(route)


def reply_fields(data: SmsEventData) -> ReplyFields:
    """The fields of an inbound reply a waiting step's output shows."""
    return {
        "body": data.get("body"),
        "from": data.get("from"),
        "to": data.get("to"),
        "message_id": data.get("message_id"),
        "channel_id": data.get("channel_id"),
        "device_id": data.get("device_id"),
        "sim_slot": data.get("sim_slot"),
        "received_at": data.get("received_at"),
    }


def reply_to(inbound: Mapping[str, Any] | None) -> ReplyTo | None:
    """The stored reply route (``Run.inbound``) as the :class:`ReplyTo` a node is given."""
    if not inbound or not inbound.get("phone"):
        return None
    sim = inbound.get("sim_slot")
    return ReplyTo(
        phone=str(inbound["phone"]),
        message_id=_str_or_none(inbound.get("message_id")),
        channel_id=_str_or_none(inbound.get("channel_id")),
        device_id=_str_or_none(inbound.get("device_id")),
        sim_slot=sim if isinstance(sim, int) and not isinstance(sim, bool) else None,
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
