"""Data retention: old message texts cleared, old events, runs and deliveries deleted.

Every setting is a number of days, 0 (the default) keeping that data forever
(``SMSHUB_RETAIN_MESSAGE_BODIES_DAYS``, ``_EVENTS_DAYS``, ``_RUNS_DAYS``,
``_DELIVERIES_DAYS``). :func:`prune` works in batches of :data:`BATCH` rows: it reads the
next ids outside any write transaction, then clears or deletes them in one short unit of
the hot path's store (group-committed with ingest, never holding it up for long), and
yields to the event loop between batches. The periodic ``retention_prune`` job runs it
hourly; ``smshub prune [--dry-run]`` runs it by hand.

What is kept whatever the settings say:

* a message row itself (its "metadata"): only its text goes — ``body`` becomes "" with
  ``body_pruned_at`` set, and the copies of the text in its events' payloads become ""
  with ``"body_pruned": true``. Messages still being handed to a gateway (queued,
  sending) keep their text until they leave;
* events younger than :data:`DEDUPE_FLOOR_DAYS`: an event row is the dedupe key a
  gateway's retry is matched on (unique channel + dedupe key), and gateways retry for up
  to two days (Vonage 24 h, SMS Gateway for Android about two days); events a pending
  webhook delivery still has to send;
* runs that have not finished (running, waiting), and finished ones a timer job still
  names; pending webhook deliveries; scheduled campaign fires (finished ones go with the
  runs' setting: a fire's time is past, so a pruned one is not fired again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hub.context import Hub
from hub.models import utcnow
from hub.store import Json, Unit, as_json, execute, fetch_all, fetch_value, placeholders

log = logging.getLogger("smshub.retention")

#: Job: prune what the retention settings let go (hub/wiring.py runs it periodically).
RETENTION_PRUNE = "retention_prune"
#: Seconds between two periodic prunes.
PRUNE_INTERVAL_S = 3600.0
#: Rows one write unit clears or deletes at most.
BATCH = 500
#: Events are kept at least this long, whatever SMSHUB_RETAIN_EVENTS_DAYS says: the
#: longest gateway retry window (SMS Gateway for Android retries for about two days).
DEDUPE_FLOOR_DAYS = 3
#: What :func:`prune` reports, in this order.
KINDS = (
    *("message_bodies", "events", "runs", "run_steps", "deliveries", "delivery_attempts"),
    "campaign_fires",
)

_FINISHED_RUN = "status IN ('completed', 'failed', 'cancelled')"
_FINISHED_DELIVERY = "status IN ('succeeded', 'failed', 'cancelled')"

#: Messages whose text may go: old enough, not cleared yet, not waiting to be sent.
_OLD_MESSAGES = (
    "SELECT id FROM messages WHERE id > ? AND created_at < ? AND body_pruned_at IS NULL "
    "AND status NOT IN ('queued', 'sending') ORDER BY id LIMIT ?"
)
#: Events that may go: old enough and no pending delivery still to send them.
_OLD_EVENTS = (
    "SELECT id FROM events WHERE id > ? AND created_at < ? AND NOT EXISTS ("
    "SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.status = 'pending') "
    "ORDER BY id LIMIT ?"
)
#: Finished runs that ended long enough ago and that no timer job names any more.
_OLD_RUNS = (
    f"SELECT id FROM runs WHERE id > ? AND finished_at < ? AND {_FINISHED_RUN} "
    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.name = 'flow_timer' "
    "AND j.status IN ('pending', 'running') AND j.key LIKE 'flow-timer:' || runs.id || ':%') "
    "ORDER BY id LIMIT ?"
)
#: Campaign fires that are over (fired, skipped, cancelled), by the runs' retention.
_FINISHED_FIRE = "status IN ('fired', 'skipped', 'cancelled')"
_OLD_FIRES = (
    f"SELECT id FROM campaign_fires WHERE id > ? AND updated_at < ? AND {_FINISHED_FIRE} "
    "ORDER BY id LIMIT ?"
)
_OLD_DELIVERIES = (
    f"SELECT id FROM deliveries WHERE id > ? AND finished_at < ? AND {_FINISHED_DELIVERY} "
    "ORDER BY id LIMIT ?"
)

#: A batch of ids in, counts per kind out (a write unit, or with ``dry`` a read unit).
_Apply = Callable[[Hub, list[str], datetime, bool], Unit[dict[str, int]]]


def retention_days(hub: Hub) -> dict[str, int]:
    """The retention settings by what they prune (0: kept forever)."""
    settings = hub.settings
    return {
        "message_bodies": settings.retain_message_bodies_days,
        "events": settings.retain_events_days,
        "runs": settings.retain_runs_days,
        "deliveries": settings.retain_deliveries_days,
    }


async def prune(hub: Hub, *, dry_run: bool = False, now: datetime | None = None) -> dict[str, int]:
    """Clear and delete what the settings let go; rows per kind (with ``dry_run``, what
    would be, changing nothing)."""
    at = now or utcnow()
    days = retention_days(hub)
    counts = dict.fromkeys(KINDS, 0)
    plan: list[tuple[str, int, _Apply]] = [
        (_OLD_MESSAGES, days["message_bodies"], _clear_bodies),
        (_OLD_EVENTS, max(days["events"], DEDUPE_FLOOR_DAYS) if days["events"] else 0, _events),
        (_OLD_RUNS, days["runs"], _runs),
        (_OLD_DELIVERIES, days["deliveries"], _deliveries),
        (_OLD_FIRES, days["runs"], _fires),
    ]
    for select, keep_days, apply in plan:
        if keep_days > 0:
            cutoff = at - timedelta(days=keep_days)
            await _in_batches(hub, select, cutoff, apply, dry_run, counts, at)
    return counts


async def retention_prune(hub: Hub) -> None:
    """Job: prune what the retention settings let go (nothing when they are all 0)."""
    if not any(retention_days(hub).values()):
        return
    counts = await prune(hub)
    if any(counts.values()):
        log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))


async def _in_batches(
    hub: Hub,
    select: str,
    cutoff: datetime,
    apply: _Apply,
    dry_run: bool,
    counts: dict[str, int],
    now: datetime,
) -> None:
    """Walk the ids ``select`` finds in id order, BATCH at a time, applying each batch."""
    after = ""
    while True:
        rows = await hub.store.read(fetch_all(select, (after, cutoff, BATCH)))
        ids = [str(row[0]) for row in rows]
        if not ids:
            return
        unit = apply(hub, ids, now, dry_run)
        done = await (hub.store.read(unit) if dry_run else hub.store.write(unit))
        for kind, value in done.items():
            counts[kind] += value
        if len(ids) < BATCH:
            return
        after = ids[-1]
        await asyncio.sleep(0)  # let ingest and the other jobs in between batches


def _ids(ids: list[str]) -> str:
    return f"({placeholders(len(ids))})"


def _lock(hub: Hub, dry: bool) -> str:
    """Rows about to be deleted are locked on PostgreSQL: a replay or a manual retry
    committing meanwhile waits, then finds them gone (or they stay, finished no more)."""
    return " FOR UPDATE" if hub.store.dialect == "postgresql" and not dry else ""


def _clear_bodies(hub: Hub, ids: list[str], now: datetime, dry: bool) -> Unit[dict[str, int]]:
    """Unit: the messages' texts cleared, in the rows and in their events' payloads."""
    if dry:
        return {"message_bodies": len(ids)}
    result = yield from execute(
        f"UPDATE messages SET body = '', body_pruned_at = ? WHERE id IN {_ids(ids)} "
        "AND body_pruned_at IS NULL AND status NOT IN ('queued', 'sending')",
        (now, *ids),
    )
    events = yield from fetch_all(
        f"SELECT id, payload FROM events WHERE message_id IN {_ids(ids)}", ids
    )
    for event_id, raw in events:
        payload = _without_body(as_json(raw))
        if payload is not None:
            yield from execute(
                "UPDATE events SET payload = ? WHERE id = ?", (Json(payload), event_id)
            )
    return {"message_bodies": result.rowcount}


def _without_body(payload: Any) -> dict[str, Any] | None:
    """An event payload with its message text cleared, or None when it holds none."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or not data.get("body"):
        return None
    return {**payload, "data": {**data, "body": "", "body_pruned": True}}


def _events(hub: Hub, ids: list[str], now: datetime, dry: bool) -> Unit[dict[str, int]]:
    """Unit: the events deleted (unless a delivery became pending meanwhile)."""
    if dry:
        return {"events": len(ids)}
    result = yield from execute(
        f"DELETE FROM events WHERE id IN {_ids(ids)} AND NOT EXISTS (SELECT 1 FROM "
        "deliveries d WHERE d.event_id = events.id AND d.status = 'pending')",
        ids,
    )
    return {"events": result.rowcount}


def _runs(hub: Hub, ids: list[str], now: datetime, dry: bool) -> Unit[dict[str, int]]:
    """Unit: finished runs deleted, their steps first (a run replayed meanwhile stays)."""
    found = yield from fetch_all(
        f"SELECT id FROM runs WHERE id IN {_ids(ids)} AND {_FINISHED_RUN}{_lock(hub, dry)}", ids
    )
    gone = [str(row[0]) for row in found]
    if not gone:
        return {"runs": 0, "run_steps": 0}
    if dry:
        steps = yield from fetch_value(
            f"SELECT COUNT(*) FROM run_steps WHERE run_id IN {_ids(gone)}", gone
        )
        return {"runs": len(gone), "run_steps": int(steps or 0)}
    steps_done = yield from execute(f"DELETE FROM run_steps WHERE run_id IN {_ids(gone)}", gone)
    runs_done = yield from execute(f"DELETE FROM runs WHERE id IN {_ids(gone)}", gone)
    return {"runs": runs_done.rowcount, "run_steps": steps_done.rowcount}


def _deliveries(hub: Hub, ids: list[str], now: datetime, dry: bool) -> Unit[dict[str, int]]:
    """Unit: finished deliveries deleted, their attempts first (one retried meanwhile,
    pending again, stays)."""
    found = yield from fetch_all(
        f"SELECT id FROM deliveries WHERE id IN {_ids(ids)} AND {_FINISHED_DELIVERY}"
        f"{_lock(hub, dry)}",
        ids,
    )
    gone = [str(row[0]) for row in found]
    if not gone:
        return {"deliveries": 0, "delivery_attempts": 0}
    if dry:
        attempts = yield from fetch_value(
            f"SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id IN {_ids(gone)}", gone
        )
        return {"deliveries": len(gone), "delivery_attempts": int(attempts or 0)}
    attempts_done = yield from execute(
        f"DELETE FROM delivery_attempts WHERE delivery_id IN {_ids(gone)}", gone
    )
    done = yield from execute(f"DELETE FROM deliveries WHERE id IN {_ids(gone)}", gone)
    return {"deliveries": done.rowcount, "delivery_attempts": attempts_done.rowcount}


def _fires(hub: Hub, ids: list[str], now: datetime, dry: bool) -> Unit[dict[str, int]]:
    """Unit: finished campaign fires deleted (one rescheduled meanwhile stays)."""
    where = f"WHERE id IN {_ids(ids)} AND {_FINISHED_FIRE}"
    if dry:
        found = yield from fetch_value(f"SELECT COUNT(*) FROM campaign_fires {where}", ids)
        return {"campaign_fires": int(found or 0)}
    done = yield from execute(f"DELETE FROM campaign_fires {where}", ids)
    return {"campaign_fires": done.rowcount}
