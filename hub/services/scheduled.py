"""Changing and cancelling messages that have not gone out yet.

A ``scheduled`` message's text and ``send_at`` can be changed (``PATCH
/api/v1/messages/{id}``): its job row is re-timed in the same unit. A ``scheduled`` or
``queued`` message (one no gateway has taken yet — waiting for its time, for capacity or
for the end of quiet hours) can be cancelled: it becomes ``cancelled`` (final) and its
pending job row is deleted; a job already running finds it cancelled and stops. Both
take the message's row lock first, so they and the send job see each other's outcome:
once the job marked it ``sending`` the answer is a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.segments import segment_info
from hub.context import Hub
from hub.errors import Conflict, NotFound
from hub.services.handover import SEND_MESSAGE
from hub.services.messages import MessageRow, load_message, record_status
from hub.services.sending import MAX_TEXT_CHARS, check_send_at
from hub.store import Unit, execute

#: Statuses a message can still be cancelled in.
CANCELLABLE = frozenset({"scheduled", "queued"})


def _load(hub: Hub, message_id: str) -> Unit[MessageRow]:
    message = yield from load_message(hub, message_id, lock=True)
    if message is None or message.direction != "outbound":
        raise NotFound(f"outbound message {message_id!r} not found", code="message_not_found")
    return message


def _gone(message: MessageRow, what: str) -> Conflict:
    return Conflict(
        f"message {message.id} is {message.status}: only a message not handed to its "
        f"gateway yet can be {what}",
        code="not_scheduled" if what == "changed" else "not_cancellable",
        details={"message_id": message.id, "status": message.status},
    )


async def edit_scheduled(hub: Hub, message_id: str, changes: dict[str, Any]) -> None:
    """Change a scheduled message's ``text`` and / or ``send_at``; 409 once it is due."""
    send_at = changes.get("send_at")
    if send_at is not None:
        check_send_at(send_at, hub.clock())
    await hub.store.write(_edit(hub, message_id, changes.get("text"), send_at))


def _edit(hub: Hub, message_id: str, text: str | None, send_at: datetime | None) -> Unit[None]:
    message = yield from _load(hub, message_id)
    if message.status != "scheduled":
        raise _gone(message, "changed")
    if text is not None:
        info = segment_info(text[:MAX_TEXT_CHARS])
        yield from execute(
            "UPDATE messages SET body = ?, segments = ?, encoding = ?, updated_at = ? WHERE id = ?",
            (text, info.segments, info.encoding, hub.clock(), message.id),
        )
    if send_at is not None:
        yield from execute(
            "UPDATE messages SET send_at = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
            (send_at, send_at, hub.clock(), message.id),
        )
        # Re-timed; enqueued_at cleared so the arq pusher hands Redis the new time (a
        # timer it already holds finds the row not yet due and leaves it).
        yield from execute(
            "UPDATE jobs SET run_at = ?, enqueued_at = NULL WHERE key = ? AND name = ? "
            "AND status = 'pending'",
            (send_at, f"send:{message.id}", SEND_MESSAGE),
        )


async def cancel_message(hub: Hub, message_id: str) -> None:
    """Cancel a message no gateway has taken yet; 409 once it has gone (or is cancelled)."""
    await hub.store.write(cancel_unit(hub, message_id))


def cancel_unit(hub: Hub, message_id: str, detail: str = "cancelled") -> Unit[None]:
    """Unit: cancel a ``scheduled`` or ``queued`` message (Conflict otherwise) and delete
    its pending send job — for the API and for broadcasts."""
    message = yield from _load(hub, message_id)
    if message.status not in CANCELLABLE:
        raise _gone(message, "cancelled")
    yield from record_status(hub, message, "cancelled", detail=detail)
    yield from execute(
        "UPDATE messages SET waiting_reason = NULL, next_attempt_at = NULL WHERE id = ?",
        (message.id,),
    )
    yield from execute(
        "DELETE FROM jobs WHERE key = ? AND name = ? AND status = 'pending'",
        (f"send:{message.id}", SEND_MESSAGE),
    )
