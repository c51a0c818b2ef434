"""Read-side queries shaped for pages (dashboard counts, threads, channel health).

The API's list queries live in :mod:`hub.services.queries`; these are the few views only
the UI needs. They read; every change goes through a hub service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.models import (
    Channel,
    Contact,
    Device,
    Event,
    Flow,
    FlowRun,
    Message,
    MessageStatusChange,
)

#: Messages shown in one conversation (the newest).
THREAD_LIMIT = 200


def today_start(now: datetime | None = None) -> datetime:
    """Midnight UTC of today."""
    now = now or datetime.now(UTC)
    return datetime.combine(now.date(), time(0), tzinfo=UTC)


@dataclass
class TodayCounts:
    received: int = 0
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    runs: int = 0
    failed_runs: int = 0


async def today_counts(hub: Hub) -> TodayCounts:
    """SMS received today, and sent / delivered / failed transitions today (UTC)."""
    since = today_start()
    counts = TodayCounts()
    async with hub.db.read() as session:
        counts.received = int(
            (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(Message)
                    .where(col(Message.direction) == "inbound", col(Message.created_at) >= since)
                )
            ).scalar()
            or 0
        )
        rows = await session.execute(
            sa.select(col(MessageStatusChange.status), sa.func.count())
            .where(
                col(MessageStatusChange.at) >= since,
                col(MessageStatusChange.status).in_(("sent", "delivered", "failed")),
            )
            .group_by(col(MessageStatusChange.status))
        )
        for status, number in rows.all():
            setattr(counts, status, int(number))
        runs = await session.execute(
            sa.select(col(FlowRun.status), sa.func.count())
            .where(col(FlowRun.created_at) >= since)
            .group_by(col(FlowRun.status))
        )
        for status, number in runs.all():
            counts.runs += int(number)
            if status == "failed":
                counts.failed_runs += int(number)
    return counts


@dataclass
class ChannelHealth:
    channel: Channel
    last_event_at: datetime | None
    devices: int
    device_last_seen: datetime | None

    @property
    def state(self) -> str:
        """ok (an event within a day), idle (older), never (no event yet), off (disabled)."""
        if not self.channel.enabled:
            return "off"
        if self.last_event_at is None:
            return "never"
        age = (datetime.now(UTC) - self.last_event_at).total_seconds()
        return "ok" if age < 86_400 else "idle"


async def channel_health(hub: Hub) -> list[ChannelHealth]:
    """Every live channel with the time of its last gateway event and its devices."""
    async with hub.db.read() as session:
        channels = list(
            (
                await session.execute(
                    sa.select(Channel)
                    .where(col(Channel.deleted_at).is_(None))
                    .order_by(col(Channel.id))
                )
            ).scalars()
        )
        last = dict(
            (
                await session.execute(
                    sa.select(col(Event.channel_id), sa.func.max(col(Event.created_at))).group_by(
                        col(Event.channel_id)
                    )
                )
            ).all()
        )
        devices = {
            cid: (n, seen)
            for cid, n, seen in (
                await session.execute(
                    sa.select(
                        col(Device.channel_id),
                        sa.func.count(),
                        sa.func.max(col(Device.last_seen_at)),
                    ).group_by(col(Device.channel_id))
                )
            ).all()
        }
    return [
        ChannelHealth(
            channel=row,
            last_event_at=_aware(last.get(row.id)),
            devices=int(devices.get(row.id, (0, None))[0]),
            device_last_seen=_aware(devices.get(row.id, (0, None))[1]),
        )
        for row in channels
    ]


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def channel_names(hub: Hub) -> dict[str, str]:
    """Channel id -> name, deleted channels included (old messages name them)."""
    async with hub.db.read() as session:
        rows = await session.execute(sa.select(col(Channel.id), col(Channel.name)))
        return {cid: name for cid, name in rows.all()}


async def flow_names(hub: Hub) -> dict[str, str]:
    """Flow id -> name, deleted flows included (old runs name them)."""
    async with hub.db.read() as session:
        rows = await session.execute(sa.select(col(Flow.id), col(Flow.name)))
        return {fid: name for fid, name in rows.all()}


@dataclass
class Thread:
    contact: Contact
    channel_id: str
    last: Message


async def threads(hub: Hub, *, q: str | None = None, limit: int = 100) -> list[Thread]:
    """Conversations (one per contact and channel), the most recently active first."""
    latest = (
        sa.select(sa.func.max(col(Message.id)).label("id"))
        .group_by(col(Message.contact_id), col(Message.channel_id))
        .subquery()
    )
    stmt = (
        sa.select(Message, Contact)
        .join(latest, col(Message.id) == latest.c.id)
        .join(Contact, col(Contact.id) == col(Message.contact_id))
    )
    if q and q.strip():
        like = f"%{q.strip()[:64]}%"
        stmt = stmt.where(sa.or_(col(Contact.phone).like(like), col(Contact.name).ilike(like)))
    stmt = stmt.order_by(col(Message.id).desc()).limit(limit)
    async with hub.db.read() as session:
        rows = (await session.execute(stmt)).all()
    return [Thread(contact=contact, channel_id=msg.channel_id, last=msg) for msg, contact in rows]


async def thread_messages(hub: Hub, contact_id: str, channel_id: str) -> list[Message]:
    """The newest messages between a contact and a channel, oldest first."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message)
            .where(col(Message.contact_id) == contact_id, col(Message.channel_id) == channel_id)
            .order_by(col(Message.id).desc())
            .limit(THREAD_LIMIT)
        )
        return list(reversed(list(rows.scalars())))


async def contact_channels(hub: Hub, contact_ids: list[str]) -> dict[str, str]:
    """Contact id -> the channel of their latest message (one query for a page)."""
    if not contact_ids:
        return {}
    latest = (
        sa.select(sa.func.max(col(Message.id)).label("id"))
        .where(col(Message.contact_id).in_(contact_ids))
        .group_by(col(Message.contact_id))
        .subquery()
    )
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(col(Message.contact_id), col(Message.channel_id)).join(
                latest, col(Message.id) == latest.c.id
            )
        )
        return {contact_id: channel_id for contact_id, channel_id in rows.all()}


async def contact_by_phone(hub: Hub, phone: str) -> Contact | None:
    """The contact of an E.164 number."""
    async with hub.db.read() as session:
        return (
            await session.execute(sa.select(Contact).where(col(Contact.phone) == phone))
        ).scalar_one_or_none()


async def recent_messages(hub: Hub, limit: int = 8) -> list[tuple[Message, Contact]]:
    """The latest messages with their contacts."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(Message, Contact)
            .join(Contact, col(Contact.id) == col(Message.contact_id))
            .order_by(col(Message.id).desc())
            .limit(limit)
        )
        return [(m, c) for m, c in rows.all()]


async def run_counts_by_flow(hub: Hub) -> dict[str, dict[str, int]]:
    """Flow id -> {status: runs} over all time (the flows list shows them)."""
    async with hub.db.read() as session:
        rows = await session.execute(
            sa.select(col(FlowRun.flow_id), col(FlowRun.status), sa.func.count()).group_by(
                col(FlowRun.flow_id), col(FlowRun.status)
            )
        )
        found: dict[str, dict[str, int]] = {}
        for flow_id, status, number in rows.all():
            found.setdefault(flow_id, {})[status] = int(number)
        return found
