"""Pause, resume and cancel a broadcast: each a unit under the broadcast's row lock, so it
never interleaves with a batch writing messages (see :mod:`hub.services.broadcasts`).

The broadcast's messages move on PostgreSQL with ``SKIP LOCKED``: a message locked at that
moment is in a hand-over (a group-committed batch that holds it may want a message the
action already holds, a deadlock the action would lose each time it is run again). The
action's unit so never waits on a message; short follow-up units, each under the
broadcast's lock again, move what was skipped once its hand-over let go (it went out, or
it is still waiting and moves now)."""

from __future__ import annotations

import asyncio
from typing import Any

from hub.context import Hub
from hub.errors import Conflict, NotFound
from hub.models import Broadcast, utcnow
from hub.queue.base import enqueue_job
from hub.services.broadcasts import NOT_HANDED, get_broadcast, lock_status, write
from hub.services.broadcasts_jobs import announce, next_job
from hub.services.handover import SEND_MESSAGE
from hub.store import (
    Unit,
    execute,
    fetch_all,
    fetch_one,
    fetch_value,
    insert_rows,
    placeholders,
)

#: The states each action may start from.
_FROM = {
    "pause": ("running",),
    "resume": ("paused",),
    "cancel": ("scheduled", "running", "paused"),
}
#: The state each action leaves; a follow-up unit moves messages only while it holds.
_TO = {"pause": "paused", "resume": "running", "cancel": "cancelled"}
#: What each action does to the broadcast's messages: from, to, the history line.
_MOVES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "pause": (("queued",), "held", "broadcast paused"),
    "resume": (("held",), "queued", "broadcast resumed"),
    "cancel": (NOT_HANDED, "cancelled", "broadcast cancelled"),
}
#: Follow-up units for messages skipped while locked, and the pause between them (a
#: hand-over holds a message for one short transaction).
SETTLE_ROUNDS = 200
SETTLE_PAUSE_S = 0.02


async def change_state(hub: Hub, broadcast_id: str, action: str) -> Broadcast:
    """Pause, resume or cancel; 409 from a state that cannot do it, 404 when unknown."""
    units = {"pause": pause_unit, "resume": resume_unit, "cancel": cancel_unit}
    outcome = await write(hub, lambda: _guarded(hub, broadcast_id, action, units[action]))
    if outcome is None:
        raise NotFound(f"broadcast {broadcast_id!r} not found", code="broadcast_not_found")
    if outcome != "ok":
        raise Conflict(
            f"cannot {action} a broadcast that is {outcome}",
            code="bad_state",
            details={"status": outcome, "allowed_from": list(_FROM[action])},
        )
    for _ in range(SETTLE_ROUNDS):
        if not await write(hub, lambda: _settle(hub, broadcast_id, action)):
            break
        await asyncio.sleep(SETTLE_PAUSE_S)
    return await get_broadcast(hub, broadcast_id)


def _settle(hub: Hub, broadcast_id: str, action: str) -> Unit[int]:
    """Unit: while the action's state holds, move the messages an earlier unit skipped
    (locked then); how many are still locked by someone else (0: done)."""
    status = yield from lock_status(hub, broadcast_id)
    if status is None or status[0] != _TO[action]:
        return 0  # changed again since: the newer action moves them
    moved = yield from _move_messages(hub, broadcast_id, *_MOVES[action])
    if action == "resume":
        yield from _requeue(hub, moved, status[1])
    from_statuses = _MOVES[action][0]
    left = yield from fetch_value(
        "SELECT COUNT(*) FROM messages m JOIN broadcast_recipients r ON r.message_id = m.id "
        f"WHERE r.broadcast_id = ? AND m.status IN ({placeholders(len(from_statuses))})",
        (broadcast_id, *from_statuses),
    )
    return int(left or 0)


def _guarded(hub: Hub, broadcast_id: str, action: str, unit: Any) -> Unit[str | None]:
    """Unit: the action when the broadcast's state allows it: "ok", else its state."""
    status = yield from lock_status(hub, broadcast_id)
    if status is None:
        return None
    if status[0] not in _FROM[action]:
        return str(status[0])
    yield from unit(hub, broadcast_id, status[1])
    return "ok"


def pause_unit(hub: Hub, broadcast_id: str, generation: int) -> Unit[None]:
    """Unit: stop; messages not handed over yet are ``held`` (the send job skips them)."""
    yield from _set_status(broadcast_id, "paused", generation)
    yield from _move_messages(hub, broadcast_id, *_MOVES["pause"])


def resume_unit(hub: Hub, broadcast_id: str, generation: int) -> Unit[None]:
    """Unit: carry on: held messages are queued again with fresh send jobs, and the
    pending recipients continue in a new generation of batch jobs."""
    generation += 1
    yield from _set_status(broadcast_id, "running", generation)
    moved = yield from _move_messages(hub, broadcast_id, *_MOVES["resume"])
    yield from _requeue(hub, moved, generation)
    yield from next_job(hub, broadcast_id, generation, 0, full=True)


def _requeue(hub: Hub, moved: list[tuple[str, str]], generation: int) -> Unit[None]:
    """Unit: a fresh send job (of this generation) for each message queued again."""
    lease = hub.queue.lease()
    for message_id, channel_id in moved:
        # The send job of an earlier generation may still wait (re-timed for capacity): it
        # goes, or it and the new one could both hand the message over.
        earlier = [f"send:{message_id}", *(f"send:{message_id}:g{g}" for g in range(generation))]
        yield from execute(
            f"DELETE FROM jobs WHERE status = 'pending' AND key IN ({placeholders(len(earlier))})",
            earlier,
        )
        yield from enqueue_job(
            SEND_MESSAGE,
            {"message_id": message_id, "channel_id": channel_id},
            key=f"send:{message_id}:g{generation}",
            max_attempts=hub.settings.send_max_attempts + 5,
            lease=lease,
        )


def cancel_unit(hub: Hub, broadcast_id: str, generation: int) -> Unit[None]:
    """Unit: nothing more goes out: pending recipients and unsent messages are cancelled
    (what went out stays counted); ``broadcast.completed`` says ``cancelled``."""
    now = utcnow()
    yield from execute(
        "UPDATE broadcasts SET status = 'cancelled', finished_at = ?, updated_at = ? WHERE id = ?",
        (now, now, broadcast_id),
    )
    yield from execute(
        "UPDATE broadcast_recipients SET status = 'cancelled' "
        "WHERE broadcast_id = ? AND status = 'pending'",
        (broadcast_id,),
    )
    yield from _move_messages(hub, broadcast_id, *_MOVES["cancel"])
    started = yield from fetch_one(
        "SELECT started_at FROM broadcasts WHERE id = ?", (broadcast_id,)
    )
    if started and started[0] is not None:
        yield from announce(hub, broadcast_id, "broadcast.completed")


def _set_status(broadcast_id: str, status: str, generation: int) -> Unit[None]:
    yield from execute(
        "UPDATE broadcasts SET status = ?, generation = ?, updated_at = ? WHERE id = ?",
        (status, generation, utcnow(), broadcast_id),
    )


def _move_messages(
    hub: Hub, broadcast_id: str, from_statuses: tuple[str, ...], to: str, detail: str
) -> Unit[list[tuple[str, str]]]:
    """Unit: the broadcast's messages in ``from_statuses`` move to ``to`` (with a history
    line each); their (id, channel id). On PostgreSQL a message locked by a hand-over is
    skipped, never waited on (see the module's note)."""
    now = utcnow()
    lock = " FOR NO KEY UPDATE OF m SKIP LOCKED" if hub.store.dialect == "postgresql" else ""
    statuses = placeholders(len(from_statuses))
    moved = yield from fetch_all(
        f"UPDATE messages SET status = ?, updated_at = ? WHERE status IN ({statuses}) "
        "AND id IN (SELECT m.id FROM messages m JOIN broadcast_recipients r "
        "ON r.message_id = m.id WHERE r.broadcast_id = ? "
        f"AND m.status IN ({statuses}) ORDER BY m.id{lock}) "
        "RETURNING id, channel_id",
        (to, now, *from_statuses, broadcast_id, *from_statuses),
    )
    yield from insert_rows(
        "message_status_changes",
        ("message_id", "status", "detail", "at"),
        [(row[0], to, detail, now) for row in moved],
    )
    return [(str(row[0]), str(row[1])) for row in moved]
