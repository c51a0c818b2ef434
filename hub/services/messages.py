"""Message status rules: statuses only move forward, and every change is recorded once.

All of it runs as units on the hot path's store (``hub.store``): :func:`load_message`
reads a message, :func:`record_status` sets a status, appends it to the history and —
for an outbound message reaching sent / delivered / failed — emits the public
``sms.<status>`` event once (its dedupe key is the message and the status, whatever
retries or repeated reports happen), in the same unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.context import Hub
from hub.event_data import channel_ref, device_ref, sms_status
from hub.models import utcnow
from hub.services.events import emit
from hub.store import Unit, as_datetime, execute, fetch_one

#: Outbound statuses in the order they can happen; a status only ever moves forward.
#: delivered and failed are both final: whichever comes first stays. A scheduled message
#: becomes queued when its time comes; cancelled (by the API, before it was handed over)
#: is final too.
STATUS_RANK = {
    "scheduled": 0,
    "queued": 1,
    "held": 1,  # a paused broadcast's message: back to queued on resume
    "sending": 2,
    "accepted": 3,
    "sent": 4,
    "delivered": 5,
    "failed": 5,
    "suppressed": 5,
    "cancelled": 5,
}
FINAL_STATUSES = frozenset({"delivered", "failed", "suppressed", "cancelled"})
#: Statuses announced to subscribers as ``sms.<status>`` events.
PUBLIC_STATUSES = frozenset({"sent", "delivered", "failed"})

_EVENT_STATUS = {"sms.sent": "sent", "sms.delivered": "delivered", "sms.failed": "failed"}


def event_status(event_type: str) -> str:
    """The message status a delivery event stands for."""
    return _EVENT_STATUS.get(event_type, "sent")


def moves_forward(current: str, new: str) -> bool:
    """True when ``new`` is a later status than ``current``."""
    if current in FINAL_STATUSES:
        return False
    return STATUS_RANK.get(new, -1) > STATUS_RANK.get(current, -1)


@dataclass(slots=True)
class MessageRow:
    """The columns of a message the hot path works with."""

    id: str
    direction: str
    status: str
    channel_id: str
    device_id: str | None
    sim_slot: int | None
    contact_id: str
    from_number: str | None
    to_number: str | None
    body: str
    segments: int
    encoding: str
    provider_message_id: str | None
    error: str | None
    source: str
    bypass_opt_out: bool
    attempts: int
    handed_at: datetime | None


#: The columns every new messages row is written with first, in this order (inbound rows
#: from ingest and outbound ones from sending add their own after them).
NEW_MESSAGE_COLUMNS = (
    "id",
    "direction",
    "channel_id",
    "device_id",
    "sim_slot",
    "contact_id",
    "from_number",
    "to_number",
    "body",
    "segments",
    "encoding",
    "status",
)

#: The columns of :class:`MessageRow`, in order, for SELECTs.
MESSAGE_COLUMNS = (
    "id, direction, status, channel_id, device_id, sim_slot, contact_id, from_number, "
    "to_number, body, segments, encoding, provider_message_id, error, source, "
    "bypass_opt_out, attempts, handed_at"
)


def message_row(found: tuple[Any, ...]) -> MessageRow:
    """A MessageRow from a SELECT of :data:`MESSAGE_COLUMNS`."""
    values = list(found)
    values[15] = bool(values[15])
    values[17] = as_datetime(values[17])
    return MessageRow(*values)


def load_message(hub: Hub, message_id: str, *, lock: bool = False) -> Unit[MessageRow | None]:
    """Unit: one message, or None; ``lock`` keeps concurrent PostgreSQL units from moving
    it at the same time (NO KEY UPDATE: rows referencing it by foreign key stay free)."""
    sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?"
    if lock and hub.store.dialect == "postgresql":
        sql += " FOR NO KEY UPDATE"
    found = yield from fetch_one(sql, (message_id,))
    return message_row(found) if found else None


def record_status(
    hub: Hub,
    message: MessageRow,
    status: str,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
    refunded: bool | None = None,
) -> Unit[None]:
    """Unit: set a message's status, append the change to its history and emit the
    public ``sms.<status>`` event of an outbound message (once per message and status)."""
    at = now or utcnow()
    message.status = status
    if status == "failed" and detail:
        message.error = detail
    yield from execute(
        "UPDATE messages SET status = ?, error = ?, updated_at = ? WHERE id = ?",
        (status, message.error, at, message.id),
    )
    yield from execute(
        "INSERT INTO message_status_changes (message_id, status, provider_status, detail, "
        "event_id, at) VALUES (?, ?, ?, ?, ?, ?)",
        (message.id, status, provider_status, detail, event_id, at),
    )
    if message.direction == "outbound" and status in PUBLIC_STATUSES:
        data = yield from _status_data(message, provider_status, refunded)
        yield from emit(
            hub,
            type=f"sms.{status}",
            channel_id=message.channel_id,
            dedupe_key=f"status:{message.id}:{status}",
            message_id=message.id,
            data=data,
            at=at,
        )


def _status_data(
    message: MessageRow, provider_status: str | None, refunded: bool | None
) -> Unit[dict[str, Any]]:
    """The ``data`` of an ``sms.<status>`` event, with the channel and device it names."""
    channel = yield from fetch_one(
        "SELECT id, name, connector FROM channels WHERE id = ?", (message.channel_id,)
    )
    device = None
    if message.device_id:
        device = yield from fetch_one(
            "SELECT id, external_id, name FROM devices WHERE id = ?", (message.device_id,)
        )
    return dict(
        sms_status(
            message,
            provider_status=provider_status,
            refunded=refunded,
            channel=channel_ref(None, message.channel_id)
            if channel is None
            else {"id": channel[0], "name": channel[1], "connector": channel[2]},
            device=device_ref(None)
            if device is None
            else {"id": device[0], "gateway_id": device[1], "name": device[2] or None},
        )
    )


def apply_status(
    hub: Hub,
    message: MessageRow,
    status: str,
    *,
    provider_status: str | None = None,
    detail: str | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
    refunded: bool | None = None,
) -> Unit[bool]:
    """Unit: move a message forward to ``status``; a late or repeated report changes
    nothing (False)."""
    if not moves_forward(message.status, status):
        return False
    yield from record_status(
        hub,
        message,
        status,
        provider_status=provider_status,
        detail=detail,
        event_id=event_id,
        now=now,
        refunded=refunded,
    )
    return True
