"""The ``campaign_fire`` job: one campaign event for one contact, at its ``fire_at``.

What holds, and where the code makes it hold:

* The job does nothing unless its fire row is still ``scheduled`` at the time the job
  was queued for (a moved, cancelled or already fired row makes it stale), and it never
  fires early: a job that runs before ``fire_at`` (on the hub's clock) re-times itself.
* Before firing, the contact's fires are worked out again
  (:func:`hub.services.campaigns_schedule.reschedule_contact_fires`): a change that was
  committed without its reschedule (a crash in between) moves or cancels the fire here.
* A text event writes its message through the send pipeline
  (:func:`hub.services.sending.create_outbound`, idempotency key
  ``campaign:<fire id>:<epoch>``) and marks the row ``fired`` in the same unit, so a
  re-run finds it fired; opted-out, blocked and deleted contacts are ``cancelled``.
* A fire whose job runs more than ``campaign_late_after_s`` after its time (the hub was
  down then) is ``skipped`` with reason ``late`` instead of sent hours late.
* A flow event starts the flow's published version with a run id derived from the fire
  (:func:`run_id_for`), so a re-run after a crash continues that run instead of starting
  another, then marks the row ``fired``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.context import Hub
from hub.event_data import iso
from hub.queue.base import Retry
from hub.services.broadcasts_jobs import CONTACT_COLUMNS, start_contact_run, text_for
from hub.services.campaigns_schedule import reschedule_contact_fires
from hub.services.sending import create_outbound
from hub.store import Unit, as_datetime, execute, fetch_one

_FIRE = (
    "SELECT f.id, f.status, f.fire_at, f.contact_id, f.campaign_id, f.event_id, e.text, "
    "e.flow_id, e.field, c.name, c.channel_id FROM campaign_fires f "
    "JOIN campaign_events e ON e.id = f.event_id JOIN campaigns c ON c.id = f.campaign_id "
    "WHERE f.id = ?"
)


@dataclass(frozen=True)
class _Fire:
    id: str
    status: str
    fire_at: datetime | None
    contact_id: str
    campaign_id: str
    event_id: str
    text: str | None
    flow_id: str | None
    field: str
    campaign_name: str
    channel_id: str | None

    def key(self) -> str:
        """The fire's idempotency key (its row and time)."""
        assert self.fire_at is not None
        return f"campaign:{self.id}:{int(self.fire_at.timestamp())}"


def _load(fire_id: str) -> Unit[_Fire | None]:
    row = yield from fetch_one(_FIRE, (fire_id,))
    if row is None:
        return None
    values = list(row)
    values[2] = as_datetime(values[2])
    return _Fire(*values)


def _still_due(hub: Hub, fire_id: str, due: datetime, *, lock: bool = False) -> Unit[bool]:
    """Unit: whether the row is still scheduled for ``due`` (locked on PostgreSQL)."""
    sql = "SELECT status, fire_at FROM campaign_fires WHERE id = ?"
    if lock and hub.store.dialect == "postgresql":
        sql += " FOR UPDATE"
    row = yield from fetch_one(sql, (fire_id,))
    return row is not None and row[0] == "scheduled" and as_datetime(row[1]) == due


def _recheck(hub: Hub, fire: _Fire, due: datetime, now: datetime) -> Unit[bool]:
    """Unit: the contact's fires worked out again; whether this one is still due."""
    yield from reschedule_contact_fires(hub, fire.contact_id, now)
    still = yield from _still_due(hub, fire.id, due)
    return still


async def campaign_fire(hub: Hub, fire_id: str, fire_at: str) -> None:
    """Job: fire one campaign event for one contact (idempotent; stale jobs do nothing)."""
    due = datetime.fromisoformat(fire_at)
    fire = await hub.store.read(_load(fire_id))
    if fire is None or fire.status != "scheduled" or fire.fire_at != due:
        return  # moved (a newer job fires it), cancelled, or fired already
    now = hub.clock()
    if now < due:
        wait = (due - now).total_seconds()
        raise Retry(max(0.05, wait), count_attempt=False, reason="campaign fire not due yet")
    limit = hub.settings.campaign_late_after_s
    if limit and (now - due).total_seconds() > limit:
        await hub.store.write(lambda: _skip_late(hub, fire, due, now))
        return
    if not await hub.store.write(lambda: _recheck(hub, fire, due, now)):
        return
    contact = await hub.store.read(
        fetch_one(f"SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = ?", (fire.contact_id,))
    )
    if contact is None:
        return
    if fire.flow_id:
        await _fire_flow(hub, fire, due, contact)
    else:
        await _fire_text(hub, fire, due, contact)


def _skip_late(hub: Hub, fire: _Fire, due: datetime, now: datetime) -> Unit[None]:
    """Unit: a fire whose time is more than ``campaign_late_after_s`` gone (the hub was
    down at its time) is skipped, reason ``late``: a reminder hours after its time would
    mislead more than it helps."""
    if (yield from _still_due(hub, fire.id, due, lock=True)):
        yield from _close(fire.id, "skipped", "late", now)


async def _fire_text(hub: Hub, fire: _Fire, due: datetime, contact: tuple[Any, ...]) -> None:
    # Rendered here, outside the write: a slow template never holds the batching writer.
    text, reason = text_for(fire.text or "", contact)
    channel = await hub.channels.get(fire.channel_id) if fire.channel_id else None
    from_number = channel.phone_number if channel else None
    quiet = channel.quiet_hours if channel else None
    await hub.store.write(
        lambda: _send(hub, fire, due, contact, (text, reason), from_number, quiet)
    )


def _send(
    hub: Hub,
    fire: _Fire,
    due: datetime,
    contact: tuple[Any, ...],
    rendered: tuple[str | None, str | None],
    from_number: str | None,
    quiet_hours: dict[str, str] | None,
) -> Unit[None]:
    """Unit: the message and the row marked fired (or why not), if the row is still due."""
    if not (yield from _still_due(hub, fire.id, due, lock=True)):
        return
    barred = yield from _barred(fire.contact_id)
    text, reason = rendered
    if barred or text is None:
        status = "cancelled" if barred else "skipped"
        yield from _close(fire.id, status, barred or reason or "skipped", hub.clock())
        return
    message = yield from create_outbound(
        hub,
        channel_id=fire.channel_id or "",
        contact_id=fire.contact_id,
        to=str(contact[1]),
        text=text,
        from_number=from_number,
        idempotency_key=fire.key(),
        source="campaign",
        quiet_hours=quiet_hours,
    )
    yield from _mark_fired(hub, fire.id, message_id=message.id)


def _barred(contact_id: str) -> Unit[str | None]:
    """Unit: why nothing may go to the contact now (opted_out, blocked, deleted), or None."""
    row = yield from fetch_one(
        "SELECT opted_out, blocked, deleted_at FROM contacts WHERE id = ?", (contact_id,)
    )
    if row is None or row[2] is not None:
        return "deleted"
    return "blocked" if row[1] else "opted_out" if row[0] else None


def _close(fire_id: str, status: str, reason: str, now: datetime) -> Unit[None]:
    yield from execute(
        "UPDATE campaign_fires SET status = ?, reason = ?, updated_at = ? "
        "WHERE id = ? AND status = 'scheduled'",
        (status, reason[:300], now, fire_id),
    )


def _mark_fired(
    hub: Hub, fire_id: str, *, message_id: str | None = None, run_id: str | None = None
) -> Unit[None]:
    now = hub.clock()
    yield from execute(
        "UPDATE campaign_fires SET status = 'fired', message_id = ?, run_id = ?, fired_at = ?, "
        "reason = NULL, updated_at = ? WHERE id = ? AND status = 'scheduled'",
        (message_id, run_id, now, now, fire_id),
    )


def run_id_for(fire: _Fire) -> str:
    """The run a flow event starts for its fire (the same on a re-run after a crash)."""
    digest = hashlib.sha256(f"campaign\x00{fire.key()}".encode()).hexdigest()
    return f"run_{digest[:26]}"


async def _fire_flow(hub: Hub, fire: _Fire, due: datetime, contact: tuple[Any, ...]) -> None:
    barred = await hub.store.read(_barred(fire.contact_id))
    version = await hub.store.read(
        fetch_one(
            "SELECT published_version FROM flows WHERE id = ? AND enabled = ? "
            "AND deleted_at IS NULL",
            (fire.flow_id, True),
        )
    )
    problem = barred or (None if version and version[0] else "flow: not published or paused")
    if problem is None:
        run_id = run_id_for(fire)
        problem = await start_contact_run(
            hub,
            fire.flow_id or "",
            int(version[0]),
            _trigger(hub, fire, due, contact),
            contact,
            run_id,
        )
    if problem is None:
        await hub.store.write(lambda: _mark_fired(hub, fire.id, run_id=run_id))
        return
    why: str = problem
    status = "cancelled" if barred else "skipped"
    await hub.store.write(lambda: _close(fire.id, status, why, hub.clock()))


def _trigger(hub: Hub, fire: _Fire, due: datetime, contact: tuple[Any, ...]) -> dict[str, Any]:
    """What a campaign's flow run sees as ``trigger``."""
    return {
        "id": fire.key(),
        "type": "campaign.event",
        "timestamp": iso(hub.clock()),
        "data": {
            "campaign_id": fire.campaign_id,
            "campaign_name": fire.campaign_name,
            "event_id": fire.event_id,
            "contact_id": fire.contact_id,
            "phone": str(contact[1]),
            "field": fire.field,
            "fire_at": iso(due),
            "channel_id": fire.channel_id,
        },
    }
