"""Campaign fires: one row per campaign event and group member, kept in step with the
contact (its date field, time zone, group membership, opt-out and block).

:func:`reschedule_contact_fires` is THE unit every change of a contact calls (API edits,
CSV import, a flow's ``contact.update``, group joins and leaves, STOP / START, delete);
it works out each event of the contact's active campaigns again and writes what changed:

* a member with a date gets a ``scheduled`` row and a ``campaign_fire`` job due at
  ``fire_at`` (key ``campaign-fire:<fire id>:<epoch>``, so a moved fire gets a new job and
  the old one finds ``fire_at`` changed and does nothing);
* a time already past when it is worked out is ``skipped`` (reason ``past``), never fired
  late; no date in the field is ``skipped`` (``no_date`` / ``bad_date``, no ``fire_at``);
* an opted-out, blocked or deleted member's fires are ``cancelled`` with that reason, and a
  scheduled fire of a contact who left the group is ``cancelled`` (``left_group``);
* a ``fired`` row stays fired unless the date moves to a new time still ahead (the event
  then fires again for the new date).

The ORM paths (API, import, groups) call it through :func:`reschedule_after` right after
their own commit; a crash between the two is caught by the fire job, which works the
fire out again before it sends (:mod:`hub.services.campaigns_jobs`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.context import Hub
from hub.ids import new_id
from hub.queue.base import enqueue_job
from hub.services import pacing
from hub.services.campaign_timing import NoDate, fire_time
from hub.store import Unit, as_datetime, as_json, execute, fetch_all, fetch_one, insert_rows

__all__ = [
    "CAMPAIGN_FIRE",
    "Plan",
    "cancel_campaign_fires",
    "fire_job_key",
    "plan_fire",
    "reschedule_after",
    "reschedule_campaign",
    "reschedule_channel_campaigns",
    "reschedule_contact_fires",
    "reschedule_contacts",
]

#: Job: fire one campaign event for one contact (due at the fire's ``fire_at``).
CAMPAIGN_FIRE = "campaign_fire"

_EVENTS = (
    "SELECT e.id, e.campaign_id, e.field, e.offset_minutes, e.at_time, ch.timezone, "
    "EXISTS (SELECT 1 FROM group_members g WHERE g.group_id = c.group_id "
    "AND g.contact_id = ?) FROM campaign_events e JOIN campaigns c ON c.id = e.campaign_id "
    "LEFT JOIN channels ch ON ch.id = c.channel_id WHERE e.deleted_at IS NULL "
    "AND c.status = 'active' AND (c.group_id IN (SELECT group_id FROM group_members "
    "WHERE contact_id = ?) OR e.id IN (SELECT event_id FROM campaign_fires "
    "WHERE contact_id = ? AND status = 'scheduled'))"
)


@dataclass(frozen=True)
class Plan:
    """What one fire row should be: status, fire time and reason."""

    status: str
    fire_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Contact:
    id: str
    timezone: str | None
    fields: dict[str, Any]
    #: Why no fire may go to the contact (opted_out, blocked, deleted), else None.
    barred: str | None


def fire_job_key(fire_id: str, fire_at: datetime) -> str:
    """The job key of a fire at one time (a moved fire is a new job)."""
    return f"campaign-fire:{fire_id}:{int(fire_at.timestamp())}"


def plan_fire(
    contact: _Contact, event: tuple[Any, ...], member: bool, now: datetime
) -> Plan | None:
    """The row one event should have for the contact (None: leave it as it is)."""
    _, _, field, minutes, at_time, channel_tz = event[:6]
    if not member:
        return Plan("cancelled", reason="left_group")
    if contact.barred:
        return Plan("cancelled", reason=contact.barred)
    tz = pacing.zone(contact.timezone) or pacing.zone(channel_tz) or UTC
    try:
        at = fire_time(contact.fields.get(field), int(minutes), at_time, tz)
    except NoDate as exc:
        return Plan("skipped", reason=exc.reason)
    if at <= now:
        return Plan("skipped", at, "past")
    return Plan("scheduled", at)


def _load_contact(hub: Hub, contact_id: str) -> Unit[_Contact | None]:
    sql = "SELECT id, timezone, fields, opted_out, blocked, deleted_at FROM contacts WHERE id = ?"
    if hub.store.dialect == "postgresql":
        sql += " FOR UPDATE"  # one reschedule of a contact at a time (the fire rows' upsert)
    row = yield from fetch_one(sql, (contact_id,))
    if row is None:
        return None
    barred = (
        "deleted"
        if row[5] is not None
        else "blocked"
        if row[4]
        else "opted_out"
        if row[3]
        else None
    )
    return _Contact(str(row[0]), row[1], dict(as_json(row[2]) or {}), barred)


def reschedule_contact_fires(hub: Hub, contact_id: str, now: datetime) -> Unit[int]:
    """Unit: bring every fire of the contact in line with it (see the module docstring);
    how many fire rows changed. Call it after any change to a contact or its groups."""
    contact = yield from _load_contact(hub, contact_id)
    if contact is None:
        return 0
    events = yield from fetch_all(_EVENTS, (contact_id, contact_id, contact_id))
    rows = yield from fetch_all(
        "SELECT event_id, id, status, fire_at, reason FROM campaign_fires WHERE contact_id = ?",
        (contact_id,),
    )
    existing = {str(r[0]): (str(r[1]), str(r[2]), as_datetime(r[3]), r[4]) for r in rows}
    changed = 0
    for event in events:
        plan = plan_fire(contact, event, bool(event[6]), now)
        if plan is None:
            continue
        done = yield from _apply(hub, event, contact_id, existing.get(str(event[0])), plan, now)
        changed += done
    return changed


_Current = tuple[str, str, datetime | None, str | None]  # id, status, fire_at, reason


def _keep(current: _Current | None, plan: Plan) -> bool:
    """Whether the row already says what the plan says (or must stay as it is)."""
    if current is None:
        return plan.status == "cancelled"  # nothing was scheduled: nothing to cancel
    _, status, fire_at, reason = current
    if status == "fired":  # fires again only for a new time still ahead
        return not (plan.status == "scheduled" and plan.fire_at != fire_at)
    if plan.status == "cancelled":
        if status == "scheduled":
            return False
        # A skip stays a skip after leaving the group; a cancel keeps its first reason.
        return plan.reason == "left_group" or (status == "cancelled" and reason == plan.reason)
    if status == "scheduled" and plan.reason == "past" and plan.fire_at == fire_at:
        return True  # due while its job is on the way: the job fires it, nothing skips it
    return status == plan.status and fire_at == plan.fire_at and reason == plan.reason


def _apply(
    hub: Hub,
    event: tuple[Any, ...],
    contact_id: str,
    current: _Current | None,
    plan: Plan,
    now: datetime,
) -> Unit[int]:
    """Unit: write the planned row (and its job when scheduled); 1 when something changed."""
    if _keep(current, plan):
        return 0
    if current is None:
        fire_id = new_id("cf")
        yield from insert_rows(
            "campaign_fires",
            (
                *("id", "campaign_id", "event_id", "contact_id", "fire_at", "status"),
                *("reason", "created_at", "updated_at"),
            ),
            [
                (fire_id, event[1], event[0], contact_id, plan.fire_at, plan.status, plan.reason)
                + (now, now)
            ],
        )
    else:
        fire_id = current[0]
        # A cancelled fire keeps the time it had (what it would have been).
        fire_at = current[2] if plan.status == "cancelled" else plan.fire_at
        yield from execute(
            "UPDATE campaign_fires SET status = ?, fire_at = ?, reason = ?, message_id = NULL, "
            "run_id = NULL, fired_at = NULL, updated_at = ? WHERE id = ?",
            (plan.status, fire_at, plan.reason, now, fire_id),
        )
    if plan.status == "scheduled" and plan.fire_at is not None:
        yield from enqueue_job(
            CAMPAIGN_FIRE,
            {"fire_id": fire_id, "fire_at": plan.fire_at.isoformat()},
            run_at=plan.fire_at,
            key=fire_job_key(fire_id, plan.fire_at),
            lease=hub.queue.lease(),
        )
    return 1


def reschedule_contacts(hub: Hub, contact_ids: Iterable[str], now: datetime) -> Unit[int]:
    """Unit: :func:`reschedule_contact_fires` for each contact (each once)."""
    changed = 0
    for contact_id in sorted(set(contact_ids)):
        changed += yield from reschedule_contact_fires(hub, contact_id, now)
    return changed


def reschedule_campaign(hub: Hub, campaign_id: str, now: datetime) -> Unit[int]:
    """Unit: every member of the campaign's group (and every contact with a scheduled fire
    of it) worked out again — after it is created, resumed or its events edited."""
    rows = yield from fetch_all(
        "SELECT g.contact_id FROM group_members g JOIN campaigns c ON c.group_id = g.group_id "
        "WHERE c.id = ? UNION SELECT contact_id FROM campaign_fires "
        "WHERE campaign_id = ? AND status = 'scheduled'",
        (campaign_id, campaign_id),
    )
    changed = yield from reschedule_contacts(hub, [str(r[0]) for r in rows], now)
    return changed


def reschedule_channel_campaigns(hub: Hub, channel_id: str, now: datetime) -> Unit[int]:
    """Unit: every active campaign on the channel worked out again (its time zone changed:
    contacts without one fire at new instants)."""
    rows = yield from fetch_all(
        "SELECT id FROM campaigns WHERE channel_id = ? AND status = 'active' ORDER BY id",
        (channel_id,),
    )
    changed = 0
    for row in rows:
        changed += yield from reschedule_campaign(hub, str(row[0]), now)
    return changed


def cancel_campaign_fires(
    campaign_id: str, reason: str, now: datetime, event_ids: Iterable[str] | None = None
) -> Unit[int]:
    """Unit: every scheduled fire of the campaign (or of some of its events) cancelled;
    their jobs find the row cancelled and do nothing."""
    sql = (
        "UPDATE campaign_fires SET status = 'cancelled', reason = ?, updated_at = ? "
        "WHERE campaign_id = ? AND status = 'scheduled'"
    )
    params: list[Any] = [reason, now, campaign_id]
    if event_ids is not None:
        ids = sorted(event_ids)
        if not ids:
            return 0
        sql += f" AND event_id IN ({', '.join('?' * len(ids))})"
        params += ids
    result = yield from execute(sql, params)
    return int(result.rowcount or 0)


async def reschedule_after(hub: Hub, contact_ids: Iterable[str]) -> None:
    """For the ORM paths: reschedule these contacts right after their change committed."""
    ids = sorted(set(contact_ids))
    if ids:
        await hub.store.write(lambda: reschedule_contacts(hub, ids, hub.clock()))
