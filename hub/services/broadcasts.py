"""Broadcasts: one text (a template over the contact) or one published flow, sent to groups
and contacts, with pause, resume and cancel, live counts, and replies linked to them.

What holds, and where the code makes it hold:

* :func:`create_broadcast` checks everything a client can get wrong (422 naming the field:
  unknown group / contact / flow ids, a template that does not compile or render) and
  writes the broadcast (``scheduled``) and its ``broadcast_start`` job, due at ``send_at``,
  in one unit.
* ``broadcast_start`` (:mod:`hub.services.broadcasts_jobs`) resolves the recipients ONCE
  into ``broadcast_recipients`` (duplicates across groups are one row; opted-out and
  deleted contacts are rows ``skipped`` with the reason) and goes ``running``.
* Batch jobs write, per recipient, one message through the send pipeline
  (:func:`hub.services.sending.create_outbound`, idempotency key
  ``broadcast:<id>:<contact>``) and mark the recipient ``queued`` in the same unit, so a
  crash either wrote both or neither: after a restart each remaining recipient gets
  exactly one message.
* Pause moves the broadcast's ``queued`` messages to ``held`` in the unit that pauses it;
  the send job hands over only ``queued`` messages, so nothing more goes out once pause
  answers. Resume puts them back to ``queued`` with fresh send jobs and carries on with
  the pending recipients; cancel marks them ``cancelled``.
* An inbound SMS from a recipient on the broadcast's channel within
  ``SMSHUB_BROADCAST_REPLY_WINDOW_H`` of their message is a reply (:func:`reply_links`,
  called by ingest): ``replied_at`` is set and the ``sms.received`` event carries
  ``broadcast_id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col

from connectors.segments import segment_info
from flows import TemplateError, render_template, template_context
from hub.context import Hub
from hub.errors import NotFound, Unprocessable
from hub.ids import new_id
from hub.models import Broadcast, Flow, utcnow
from hub.paging import keyset_page
from hub.queue.base import enqueue_job
from hub.services.sending import MAX_TEXT_CHARS, resolve_route
from hub.services.sims import capacity_wait
from hub.store import (
    Json,
    Unit,
    as_json,
    execute,
    fetch_all,
    fetch_one,
    insert_rows,
    placeholders,
)

T = TypeVar("T")

#: Job: resolve a broadcast's recipients and start sending (due at ``send_at``).
BROADCAST_START = "broadcast_start"
#: Most contact ids one broadcast may name directly (groups have no limit).
MAX_CONTACT_IDS = 10_000
#: Most groups one broadcast may name.
MAX_GROUP_IDS = 100
#: Message statuses that have not been handed to the gateway yet.
NOT_HANDED = ("queued", "held")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class BroadcastSpec:
    """What a client asks for (the API body, checked by :func:`create_broadcast`)."""

    name: str
    text: str | None = None
    flow_id: str | None = None
    group_ids: tuple[str, ...] = ()
    contact_ids: tuple[str, ...] = ()
    channel_id: str | None = None
    send_at: datetime | None = None
    quiet_hours: dict[str, str] | None = None
    #: The parent run, for a broadcast a flow's ``flow.start`` node made for a group.
    origin: dict[str, Any] | None = None


def field_error(field: str, message: str, code: str = "validation_error") -> Unprocessable:
    """A 422 naming the field that is wrong."""
    return Unprocessable(message, code=code, details=[{"field": field, "message": message}])


def contact_context(row: tuple[Any, ...]) -> dict[str, Any]:
    """A contact as broadcast templates see it, from (id, phone, name, language, timezone,
    opted_out, tags, fields)."""
    return {
        "id": row[0],
        "phone": row[1],
        "name": row[2] or "",
        "language": row[3],
        "timezone": row[4],
        "opted_out": bool(row[5]),
        "tags": list(as_json(row[6]) or []),
        "fields": {k: str(v) for k, v in (as_json(row[7]) or {}).items()},
    }


#: The contact a template is tried on at creation (every field a template may name).
SAMPLE_CONTACT = contact_context(
    ("ct_sample", "+15550001234", "Sam", "en", None, False, "[]", "{}")
)


def render_text(template: str, contact: dict[str, Any]) -> str:
    """The broadcast's text for one contact (TemplateError when it cannot be rendered)."""
    return render_template(template, template_context(contact=contact)).strip()


@dataclass(frozen=True)
class Preview:
    """A broadcast text as one contact would get it, with its SMS parts."""

    text: str
    phone: str | None
    segments: int
    encoding: str
    error: str | None = None


async def preview(hub: Hub, template: str, group_id: str | None) -> Preview:
    """The text for the group's newest member (or a sample contact), or why it fails."""
    contact = SAMPLE_CONTACT
    if group_id:
        found = await hub.store.read(
            fetch_one(
                "SELECT c.id, c.phone, c.name, c.language, c.timezone, c.opted_out, c.tags, "
                "c.fields FROM group_members g JOIN contacts c ON c.id = g.contact_id "
                "WHERE g.group_id = ? AND c.deleted_at IS NULL ORDER BY c.id DESC LIMIT 1",
                (group_id,),
            )
        )
        if found is not None:
            contact = contact_context(found)
    try:
        text = render_text(template, contact)
    except TemplateError as exc:
        return Preview("", contact["phone"], 0, "GSM-7", error=str(exc))
    info = segment_info(text)
    return Preview(text, contact["phone"], info.segments, info.encoding)


def _check_content(spec: BroadcastSpec) -> None:
    if bool(spec.text) == bool(spec.flow_id):
        raise field_error("text", "give exactly one of text or flow_id")
    if not spec.group_ids and not spec.contact_ids:
        raise field_error("group_ids", "give group_ids or contact_ids (at least one recipient)")
    if spec.text is not None:
        if len(spec.text) > MAX_TEXT_CHARS:
            raise field_error("text", f"text is longer than {MAX_TEXT_CHARS} characters")
        try:
            render_text(spec.text, SAMPLE_CONTACT)
        except TemplateError as exc:
            raise field_error(
                "text", f"text is not a valid template: {exc}", "bad_template"
            ) from exc
    if spec.quiet_hours is not None:
        for key in ("start", "end"):
            value = spec.quiet_hours.get(key)
            if not isinstance(value, str) or not _HHMM.match(value):
                raise field_error(f"quiet_hours.{key}", f"quiet_hours.{key} must be HH:MM")


async def check_flow(hub: Hub, flow_id: str) -> None:
    """422 naming flow_id unless the flow exists, is published and enabled."""
    async with hub.db.read() as session:
        flow = await session.get(Flow, flow_id)
    if flow is None or flow.deleted_at is not None:
        raise field_error("flow_id", f"unknown flow {flow_id!r}", "unknown_flow")
    if flow.published_version is None:
        raise field_error("flow_id", f"flow {flow_id!r} is not published", "not_published")
    if not flow.enabled:
        raise field_error("flow_id", f"flow {flow_id!r} is paused", "flow_paused")


def _unknown(table: str, ids: tuple[str, ...]) -> Unit[list[str]]:
    """Unit: which of ``ids`` are not rows of ``table`` (deleted contacts count as known:
    they are skipped and counted at start)."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        rows = yield from fetch_all(
            f"SELECT id FROM {table} WHERE id IN ({placeholders(len(chunk))})", chunk
        )
        found |= {str(r[0]) for r in rows}
    return [i for i in wanted if i not in found]


async def _check_recipients(hub: Hub, spec: BroadcastSpec) -> None:
    for field, table, ids in (
        ("group_ids", "groups", spec.group_ids),
        ("contact_ids", "contacts", spec.contact_ids),
    ):
        missing = await hub.store.read(_unknown(table, ids)) if ids else []
        if missing:
            shown = ", ".join(missing[:20]) + (" …" if len(missing) > 20 else "")
            raise Unprocessable(
                f"unknown {field.removesuffix('_ids')} ids: {shown}",
                code="unknown_ids",
                details=[{"field": field, "message": "unknown ids", "ids": missing}],
            )


async def create_broadcast(hub: Hub, spec: BroadcastSpec) -> Broadcast:
    """Check and store a broadcast with its start job; 422 naming the field otherwise."""
    _check_content(spec)
    if spec.flow_id:
        await check_flow(hub, spec.flow_id)
    await _check_recipients(hub, spec)
    channel_id = spec.channel_id
    if spec.text is not None or channel_id:
        # The channel is fixed now: replies are linked per channel, and a bad id is a 422.
        route = await resolve_route(hub, "", channel_id=channel_id, device_id=None)
        channel_id = route.channel.id
    now = utcnow()
    broadcast_id = new_id("bc")
    send_at = max(spec.send_at or now, now)
    await hub.store.write(insert_broadcast(hub, broadcast_id, spec, channel_id, send_at, now))
    return await get_broadcast(hub, broadcast_id)


def insert_broadcast(
    hub: Hub,
    broadcast_id: str,
    spec: BroadcastSpec,
    channel_id: str | None,
    send_at: datetime,
    now: datetime,
) -> Unit[bool]:
    """Unit: the broadcast row and its start job, due at ``send_at`` (checked already);
    False, and nothing written, when a broadcast with this id exists."""
    inserted = yield from insert_rows(
        "broadcasts",
        (
            *("id", "name", "text", "flow_id", "channel_id", "group_ids", "contact_ids"),
            *("send_at", "quiet_hours", "origin", "status", "generation"),
            *("created_at", "updated_at"),
        ),
        [
            (
                *(broadcast_id, spec.name, spec.text, spec.flow_id, channel_id),
                *(Json(sorted(set(spec.group_ids))), Json(sorted(set(spec.contact_ids)))),
                *(send_at, Json(spec.quiet_hours) if spec.quiet_hours else None),
                Json(spec.origin) if spec.origin is not None else None,
                *("scheduled", 0, now, now),
            )
        ],
        conflict="ON CONFLICT (id) DO NOTHING",
        returning="id",
    )
    if not inserted:
        return False
    yield from enqueue_job(
        BROADCAST_START,
        {"broadcast_id": broadcast_id},
        run_at=send_at,
        key=f"bcast-start:{broadcast_id}",
        lease=hub.queue.lease(),
    )
    return True


async def get_broadcast(hub: Hub, broadcast_id: str) -> Broadcast:
    """One broadcast, or a 404."""
    async with hub.db.read() as session:
        row = await session.get(Broadcast, broadcast_id)
    if row is None:
        raise NotFound(f"broadcast {broadcast_id!r} not found", code="broadcast_not_found")
    return row


async def list_broadcasts(
    hub: Hub, *, limit: int, cursor: str | None, status: str | None = None
) -> tuple[list[Broadcast], str | None]:
    """A page of broadcasts, newest first."""
    stmt = sa.select(Broadcast)
    if status:
        stmt = stmt.where(col(Broadcast.status) == status)
    return await keyset_page(hub.db, stmt, key=col(Broadcast.id), limit=limit, cursor=cursor)


# -- counts -----------------------------------------------------------------------------

COUNT_NAMES = (
    "recipients",
    "skipped_opted_out",
    "skipped_blocked",
    "skipped",
    "queued",
    "sent",
    "delivered",
    "failed",
    "cancelled",
    "replied",
)
_SENT = frozenset({"accepted", "sent", "delivered"})
_FAILED = frozenset({"failed", "suppressed"})


def counts(broadcast_id: str) -> Unit[dict[str, Any]]:
    """Unit: the live counts of a broadcast — one grouped query over its recipients, their
    messages and (flow broadcasts) their runs."""
    rows = yield from fetch_all(
        "SELECT r.status, r.skipped_reason, m.status, u.status, count(*), count(r.replied_at) "
        "FROM broadcast_recipients r LEFT JOIN messages m ON m.id = r.message_id "
        "LEFT JOIN runs u ON u.id = r.run_id WHERE r.broadcast_id = ? "
        "GROUP BY r.status, r.skipped_reason, m.status, u.status",
        (broadcast_id,),
    )
    total: dict[str, Any] = dict.fromkeys(COUNT_NAMES, 0)
    runs: dict[str, int] = {}
    for status, reason, message_status, run_status, n, replied in rows:
        total["recipients"] += n
        total["replied"] += replied
        if run_status:
            runs[run_status] = runs.get(run_status, 0) + n
        bucket = _bucket(status, message_status)
        if bucket:
            total[bucket] += n
        if status == "skipped" and reason == "opted_out":
            total["skipped_opted_out"] += n
        if status == "skipped" and reason == "blocked":
            total["skipped_blocked"] += n
    total["runs"] = runs
    return total


def _bucket(status: str, message_status: str | None) -> str:
    """Which count one recipient adds to ("" for a started flow run: counted in runs)."""
    if status == "pending" or message_status in (*NOT_HANDED, "sending", "scheduled"):
        return "queued"
    if status in ("skipped", "cancelled"):
        return str(status)
    if message_status in _SENT:
        return "delivered" if message_status == "delivered" else "sent"
    if message_status in _FAILED:
        return "failed"
    if message_status == "cancelled":
        return "cancelled"
    return ""


async def waiting_until(hub: Hub, row: Broadcast, found: dict[str, Any]) -> datetime | None:
    """While a running broadcast has messages queued: when its channel's first SIM has
    capacity again, if every SIM is at its rate or daily cap now (else None)."""
    if row.status != "running" or not found["queued"] or not row.channel_id:
        return None
    return await capacity_wait(hub, row.channel_id)


# -- locking ------------------------------------------------------------------------


async def write(hub: Hub, make: Callable[[], Unit[T]]) -> T:
    """Run the unit ``make()`` gives; on PostgreSQL run it again when it loses a deadlock
    (a group-committed batch holds the locks of all its units, so no lock order between
    broadcasts, batches and hand-overs can be promised)."""
    found: T = await hub.store.write(make)
    return found


def lock_status(hub: Hub, broadcast_id: str) -> Unit[tuple[str, int] | None]:
    """Unit: (status, generation) of a broadcast, locked against concurrent state changes
    and batches on PostgreSQL (SQLite's single writer serializes them anyway)."""
    sql = "SELECT status, generation FROM broadcasts WHERE id = ?"
    if hub.store.dialect == "postgresql":
        sql += " FOR UPDATE"
    found = yield from fetch_one(sql, (broadcast_id,))
    return (str(found[0]), int(found[1])) if found else None


# -- replies ----------------------------------------------------------------------------


def reply_links(
    hub: Hub, pairs: set[tuple[str, str]], now: datetime
) -> Unit[dict[tuple[str, str], str]]:
    """Unit: for (contact id, channel id) pairs of inbound SMS, the latest broadcast whose
    message to that contact on that channel is within the reply window (one query)."""
    contacts = sorted({contact for contact, _ in pairs})
    if not contacts:
        return {}
    since = now - timedelta(hours=hub.settings.broadcast_reply_window_h)
    rows = yield from fetch_all(
        "SELECT contact_id, channel_id, broadcast_id FROM broadcast_recipients "
        f"WHERE contact_id IN ({placeholders(len(contacts))}) AND queued_at > ? "
        "ORDER BY queued_at",
        (*contacts, since),
    )
    links: dict[tuple[str, str], str] = {}
    for contact_id, channel_id, broadcast_id in rows:  # oldest first: the latest wins
        for pair in pairs:
            if pair[0] == contact_id and channel_id in (None, pair[1]):
                links[pair] = str(broadcast_id)
    return links


def mark_replied(links: dict[str, str], now: datetime) -> Unit[None]:
    """Unit: the first reply of each recipient (contact id → broadcast id) is recorded."""
    for contact_id, broadcast_id in sorted(links.items()):
        yield from execute(
            "UPDATE broadcast_recipients SET replied_at = ? "
            "WHERE broadcast_id = ? AND contact_id = ? AND replied_at IS NULL",
            (now, broadcast_id, contact_id),
        )
