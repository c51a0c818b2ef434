"""The SIMs of a channel: which one takes a message, their limits and counters.

Every device of a channel has SIMs (its ``sim_slots``; a phone whose slots are unknown
counts as one SIM, slot 0), and each SIM a row in ``sim_pacing``: its own
``rate_per_min`` (else the device's ``rate_limit_per_min``, else
``SMSHUB_DEVICE_RATE_LIMIT_PER_MIN``), an optional ``daily_cap`` (parts a local day in
the channel's timezone, else UTC) and the counters :mod:`hub.services.pacing` decides on.

Choosing a SIM (:func:`choose`): a message with a device and SIM of its own (asked for, or
handed over before) waits for that SIM; one to a contact who texted in goes out on the SIM
the contact last used, waiting while that SIM is at its rate — and only when that SIM is
at its daily cap, on the first other SIM of the channel that can send now; any other
message takes the channel's SIMs in turn (round-robin), skipping the ones that cannot send
now. When no SIM can, the message waits until the first one can.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from hub.context import ChannelRuntime, Hub
from hub.errors import NotFound, Unprocessable
from hub.services import pacing
from hub.store import Json, Unit, as_datetime, as_json, execute, fetch_all, fetch_one, insert_rows


@dataclass(slots=True)
class Sim:
    """One SIM of a device, with its limits and counters as read for this decision."""

    device_id: str
    external_id: str
    slot: int
    #: Whether the device reported its slots (then the slot is named in the send request).
    known_slot: bool
    rate_per_min: int | None
    daily_cap: int | None
    limits: pacing.Limits
    state: pacing.SimState


@dataclass(frozen=True, slots=True)
class Choice:
    """The SIM that takes the message now, or (``sim`` None) when the first one can."""

    sim: Sim | None
    wait_until: datetime | None = None


def channel_zone(channel: ChannelRuntime | None) -> tzinfo:
    """The channel's timezone (``channels.timezone``), else UTC."""
    name = getattr(channel, "timezone", None) if channel is not None else None
    return pacing.zone(name) or UTC


_DEVICES = "SELECT id, external_id, sim_slots, rate_limit_per_min FROM devices WHERE "
_SIMS = (
    "SELECT device_id, slot, rate_per_min, daily_cap, recent, next_at, day, day_parts "
    "FROM sim_pacing WHERE device_id IN ({}) ORDER BY device_id, slot"
)


def load_sims(
    hub: Hub, *, channel_id: str, tz: tzinfo, device_id: str | None = None
) -> Unit[list[Sim]]:
    """Unit: the SIMs of a channel's devices (or of one device), in a fixed order; their
    ``sim_pacing`` rows are created on first sight. Nothing is locked: the hand-over
    locks the one SIM it picks (:func:`still_free`)."""
    where, params = ("id = ?", (device_id,)) if device_id else ("channel_id = ?", (channel_id,))
    devices = yield from fetch_all(_DEVICES + where + " ORDER BY id", params)
    if not devices:
        return []
    slots = {str(d[0]): _slots(d[2]) for d in devices}
    wanted = [(dev, slot) for dev, found in slots.items() for slot in (found or [0])]
    sql = _SIMS.format(", ".join("?" * len(devices)))
    rows = yield from fetch_all(sql, list(slots))
    missing = set(wanted) - {(str(r[0]), int(r[1])) for r in rows}
    if missing:
        yield from insert_rows(
            "sim_pacing",
            ("device_id", "slot", "recent", "day_parts"),
            [(dev, slot, Json([]), 0) for dev, slot in sorted(missing)],
            conflict="ON CONFLICT (device_id, slot) DO NOTHING",
        )
        rows = yield from fetch_all(sql, list(slots))
    info = {str(d[0]): (str(d[1]), d[3]) for d in devices}
    wanted_set = set(wanted)
    return [
        _sim(hub, row, info[str(row[0])], bool(slots[str(row[0])]), tz)
        for row in rows
        if (str(row[0]), int(row[1])) in wanted_set
    ]


def _slots(value: Any) -> list[int]:
    return sorted({int(s) for s in as_json(value) or []})


def _sim(hub: Hub, row: Sequence[Any], device: tuple[str, Any], known: bool, tz: tzinfo) -> Sim:
    rate = row[2] or device[1] or hub.settings.device_rate_limit_per_min
    return Sim(
        device_id=str(row[0]),
        external_id=device[0],
        slot=int(row[1]),
        known_slot=known,
        rate_per_min=row[2],
        daily_cap=row[3],
        limits=pacing.Limits(int(rate), row[3], tz),
        state=pacing.SimState(
            recent=pacing.recent_from_json(as_json(row[4])),
            next_at=as_datetime(row[5]),
            day=row[6],
            day_parts=int(row[7] or 0),
        ),
    )


_ONE_SIM = (
    "SELECT recent, next_at, day, day_parts FROM sim_pacing WHERE device_id = ? AND slot = ? "
    "FOR NO KEY UPDATE"
)
#: The next round-robin turn per channel, in this process (no shared row to contend on:
#: with several processes each takes the SIMs in turn, and the rates hold regardless).
_TURNS: collections.Counter[str] = collections.Counter()


def next_turn(channel_id: str) -> int:
    """This process's next round-robin turn over the channel's SIMs."""
    _TURNS[channel_id] += 1
    return _TURNS[channel_id] - 1


def still_free(hub: Hub, sim: Sim, now: datetime, parts: int) -> Unit[bool]:
    """Unit: on PostgreSQL, lock the picked SIM's row and read its counters again (another
    worker's hand-over may have counted on it since the choice); True when it can still
    take ``parts`` now. SQLite's single writer makes the first read current already."""
    if hub.store.dialect != "postgresql":
        return True
    row = yield from fetch_one(_ONE_SIM, (sim.device_id, sim.slot))
    if row is None:
        return False
    sim.state = pacing.SimState(
        recent=pacing.recent_from_json(as_json(row[0])),
        next_at=as_datetime(row[1]),
        day=row[2],
        day_parts=int(row[3] or 0),
    )
    return pacing.sim_wait(sim.state, sim.limits, now, parts) is None


def choose(
    sims: list[Sim],
    now: datetime,
    parts: int,
    *,
    own: tuple[str, int] | None = None,
    sticky: tuple[str, int] | None = None,
    turn: int = 0,
) -> Choice:
    """The SIM for a message of ``parts`` parts (the rule in the module docstring)."""
    if not sims:
        return Choice(None)
    by_key = {(s.device_id, s.slot): s for s in sims}
    pinned = by_key.get(own) if own else None
    if own and pinned is None:  # an own device whose slot is unknown: its first SIM
        pinned = next((s for s in sims if s.device_id == own[0]), None)
    if pinned is not None:
        wait = pacing.sim_wait(pinned.state, pinned.limits, now, parts)
        return Choice(pinned if wait is None else None, wait)
    first = by_key.get(sticky) if sticky else None
    if first is not None:
        wait = pacing.sim_wait(first.state, first.limits, now, parts)
        if wait is None or not at_cap(first, now, parts):
            return Choice(first if wait is None else None, wait)
    start = turn % len(sims)
    waits = []
    for sim in sims[start:] + sims[:start]:
        wait = pacing.sim_wait(sim.state, sim.limits, now, parts)
        if wait is None:
            return Choice(sim)
        waits.append(wait)
    return Choice(None, min(waits))


def at_cap(sim: Sim, now: datetime, parts: int) -> bool:
    """True when the SIM's daily cap keeps it from taking ``parts`` more today."""
    today = pacing.day_parts(sim.state, now, sim.limits.tz)
    return sim.daily_cap is not None and today > 0 and today + parts > sim.daily_cap


def take(hub: Hub, sim: Sim, now: datetime, parts: int) -> Unit[None]:
    """Unit: count ``parts`` handed over by the SIM at ``now`` (and draw its spacing)."""
    state = pacing.taken(sim.state, sim.limits, now, parts, hub.settings.send_spacing_max_s)
    sim.state = state
    yield from execute(
        "UPDATE sim_pacing SET recent = ?, next_at = ?, day = ?, day_parts = ? "
        "WHERE device_id = ? AND slot = ?",
        (
            Json([list(p) for p in state.recent]),
            state.next_at,
            state.day,
            state.day_parts,
            sim.device_id,
            sim.slot,
        ),
    )


async def capacity_wait(hub: Hub, channel_id: str, parts: int = 1) -> datetime | None:
    """When the channel's first SIM can take a message of ``parts`` parts: None when one
    can now (or the channel has no devices to pace), else that time (UTC)."""
    channel = await hub.channels.get(channel_id)
    tz = channel_zone(channel)
    sims = await hub.store.read(load_sims_readonly(hub, channel_id=channel_id, tz=tz))
    return choose(sims, hub.clock(), parts).wait_until if sims else None


def load_sims_readonly(hub: Hub, *, channel_id: str, tz: tzinfo) -> Unit[list[Sim]]:
    """Unit: the channel's SIMs as stored; a SIM without a row yet is idle."""
    devices = yield from fetch_all(_DEVICES + "channel_id = ? ORDER BY id", (channel_id,))
    found: list[Sim] = []
    for dev in devices:
        known = _slots(dev[2])
        rows = yield from fetch_all(_SIMS.format("?"), (dev[0],))
        stored = {int(r[1]): r for r in rows}
        for slot in known or [0]:
            row = stored.get(slot, (dev[0], slot, None, None, [], None, None, 0))
            found.append(_sim(hub, row, (str(dev[1]), dev[3]), bool(known), tz))
    return found


# --- the devices API: per-SIM limits and usage --------------------------------------------


def sims_out(hub: Hub, sims: list[Sim], now: datetime) -> list[dict[str, Any]]:
    """The API view of SIMs: their own limits, the effective ones and their usage."""
    return [
        {
            "slot": s.slot,
            "rate_per_min": s.rate_per_min,
            "daily_cap": s.daily_cap,
            "effective_rate_per_min": s.limits.rate_per_min,
            "parts_last_minute": pacing.parts_in_window(s.state, now),
            "parts_today": pacing.day_parts(s.state, now, s.limits.tz),
            "available_at": pacing.sim_wait(s.state, s.limits, now, 1),
        }
        for s in sims
    ]


async def device_sims(hub: Hub, device_id: str) -> list[dict[str, Any]]:
    """The SIMs of one device as the API shows them."""
    found = await hub.store.read(
        fetch_one("SELECT channel_id FROM devices WHERE id = ?", (device_id,))
    )
    if found is None:
        return []
    channel = await hub.channels.get(str(found[0]))
    sims = await hub.store.read(
        load_sims_readonly(hub, channel_id=str(found[0]), tz=channel_zone(channel))
    )
    return sims_out(hub, [s for s in sims if s.device_id == device_id], hub.clock())


def check_sims(sims: list[dict[str, Any]]) -> None:
    """422 naming the field when two entries name the same slot."""
    seen: set[int] = set()
    for i, sim in enumerate(sims):
        if sim["slot"] in seen:
            message = f"slot {sim['slot']} is given twice"
            raise Unprocessable(message, details=[{"field": f"sims[{i}].slot", "message": message}])
        seen.add(sim["slot"])


async def update_sims(hub: Hub, device_id: str, sims: list[dict[str, Any]]) -> None:
    """Set per-SIM ``rate_per_min`` / ``daily_cap`` (null = default / no cap); a slot
    not yet seen becomes one of the device's SIMs."""
    check_sims(sims)
    await hub.store.write(_update_sims(device_id, sims))


def _update_sims(device_id: str, sims: list[dict[str, Any]]) -> Unit[None]:
    found = yield from fetch_one("SELECT sim_slots FROM devices WHERE id = ?", (device_id,))
    if found is None:
        raise NotFound(f"device {device_id!r} not found", code="device_not_found")
    slots = sorted(set(_slots(found[0])) | {int(s["slot"]) for s in sims})
    yield from execute("UPDATE devices SET sim_slots = ? WHERE id = ?", (Json(slots), device_id))
    for sim in sims:
        given = [name for name in ("rate_per_min", "daily_cap") if name in sim]
        update = ", ".join(f"{name} = excluded.{name}" for name in given)
        yield from insert_rows(
            "sim_pacing",
            ("device_id", "slot", "rate_per_min", "daily_cap", "recent", "day_parts"),
            [(device_id, sim["slot"], sim.get("rate_per_min"), sim.get("daily_cap"), Json([]), 0)],
            conflict=f"ON CONFLICT (device_id, slot) DO UPDATE SET {update}"
            if update
            else "ON CONFLICT (device_id, slot) DO NOTHING",
        )
