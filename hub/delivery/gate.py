"""Per-endpoint isolation inside one process: in-flight caps, pacing and pauses.

Every delivery is its own queue job, and the queue runs ``settings.workers`` jobs at once
for *everything* (SMS sends too). Without a limit, 500 queued deliveries to one endpoint
that hangs would take every worker for 15 s at a time. So before an attempt, the job asks
the gate of its process:

* a healthy endpoint may have ``delivery_max_in_flight_per_endpoint`` attempts in flight,
  but one this process has not seen answer yet only ``PROBE_CAP`` (a slow start: a dead
  endpoint shows itself with two attempts, not eight);
* a slow one (smoothed attempt time, or an attempt still running, past ``slow_s``) may
  have one, and all slow endpoints together at most a quarter of the workers;
* all deliveries together at most three quarters of the workers, so SMS sends and the
  other jobs always find a free worker, however many endpoints hang;
* an endpoint's rate limit (requests per second) spaces attempts out;
* a 429/503 with ``Retry-After`` pauses the whole endpoint, not just that delivery.

A job the gate turns away is deferred with ``Retry(count_attempt=False)``: it loses no
attempt and frees its worker at once. The delay is a slot in a virtual queue per endpoint
(``reserved_until`` advances by the endpoint's expected time per request), so a backlog of
N deliveries is spread over the time the endpoint needs for them instead of all coming
back together and being turned away again. The gate is in memory and per process
(``Hub.gates``), except for the one number that must hold across processes: with Redis
configured (``settings.redis_url``), an endpoint's in-flight cap is global, a counting
semaphore in Redis (:class:`SharedSlots`) that :meth:`EndpointGate.admit` asks after the
local checks pass. Its holders expire (``holder_ttl_s``: twice the delivery timeout), so a
killed process's slots come back by themselves. Without Redis the cap applies to each
process. Pacing, pauses and the slow-endpoint and worker shares stay per process.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("smshub.delivery")

#: Smoothed attempt time (s) from which an endpoint counts as slow (or half the delivery
#: timeout, when that is shorter: an attempt that times out is slow by definition).
SLOW_S = 2.0
#: Attempts in flight to an endpoint before its first answer in this process.
PROBE_CAP = 2
#: Weight of the newest attempt in the smoothed attempt time.
EWMA_ALPHA = 0.3
#: Shortest and longest deferral (s) of a job the gate turned away.
MIN_DEFER_S = 0.1
MAX_DEFER_S = 60.0
#: Deferrals are spread by ± this fraction so they do not come back in lockstep.
DEFER_JITTER = 0.2
#: Prefix of the Redis sorted sets of slot holders (one per endpoint).
SLOTS_PREFIX = "smshub:delivery:slots:"

#: Acquire a slot: drop expired holders, then add this one if fewer than the cap hold one.
#: KEYS[1] the endpoint's set; ARGV cap, holder id, holder lifetime (ms). Scores are
#: expiry times on Redis's clock, so the processes' clocks do not matter.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""


@dataclass
class _Lane:
    """One endpoint's state in this process."""

    in_flight: int = 0
    #: Monotonic start times of the attempts in flight.
    started: list[float] = field(default_factory=list)
    ewma_s: float = 0.0
    #: An attempt finished (answered, or timed out) in this process.
    answered: bool = False
    #: No attempt starts before this (rate limit spacing, Retry-After pauses).
    not_before: float = 0.0
    #: End of the virtual queue of deferred jobs.
    reserved_until: float = 0.0


@dataclass(frozen=True)
class Ticket:
    """An admitted attempt; hand it back to :meth:`EndpointGate.release` (or ``leave``)."""

    endpoint_id: str
    started: float
    slow: bool
    #: The attempts this endpoint may have in flight, as admitted.
    cap: int = 1
    #: Its holder id in the shared slots (None: admitted by this process alone).
    holder: str | None = None


class SharedSlots:
    """Per-endpoint counting semaphores in Redis: a sorted set of holder ids scored by
    their expiry, so a holder that never releases (a killed process) frees its slot after
    ``holder_ttl_s``."""

    def __init__(self, redis: Redis, *, holder_ttl_s: float) -> None:
        self.redis = redis
        self.holder_ttl_ms = max(1, int(holder_ttl_s * 1000))
        self._acquire = redis.register_script(_ACQUIRE)

    async def acquire(self, endpoint_id: str, cap: int) -> str | None:
        """A new holder id when fewer than ``cap`` hold a slot, else None."""
        holder = secrets.token_hex(8)
        got = await self._acquire(
            keys=[SLOTS_PREFIX + endpoint_id], args=[cap, holder, self.holder_ttl_ms]
        )
        return holder if int(got) == 1 else None

    async def release(self, endpoint_id: str, holder: str) -> None:
        """Give a slot back."""
        await self.redis.zrem(SLOTS_PREFIX + endpoint_id, holder)

    async def holders(self, endpoint_id: str) -> int:
        """Slots held now (expired holders not counted)."""
        now_s, now_us = await self.redis.time()
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        return int(await self.redis.zcount(SLOTS_PREFIX + endpoint_id, f"({now_ms}", "+inf"))


class EndpointGate:
    """Admits attempts per endpoint: ``enter`` gives a Ticket, or seconds to defer."""

    def __init__(
        self,
        *,
        per_endpoint: int,
        slow_total: int,
        total: int,
        slow_s: float = SLOW_S,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedSlots | None = None,
    ) -> None:
        #: The global in-flight caps (None: the caps are this process's).
        self.shared = shared
        self.per_endpoint = max(1, per_endpoint)
        self.slow_s = slow_s
        self.slow_total = max(1, slow_total)
        self.total = max(1, total)
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        self._slow_in_flight = 0
        self._in_flight = 0

    @classmethod
    def for_settings(cls, settings: Settings, redis: Redis | None = None) -> EndpointGate:
        """The gate of a process with ``settings.workers`` workers: deliveries may take
        three quarters of them, slow endpoints a quarter; caps global with ``redis``."""
        workers = settings.workers
        shared = None
        if redis is not None:
            shared = SharedSlots(redis, holder_ttl_s=2 * settings.delivery_timeout_s + 5)
        return cls(
            per_endpoint=settings.delivery_max_in_flight_per_endpoint,
            slow_total=max(1, workers // 4),
            total=max(1, workers * 3 // 4),
            slow_s=min(SLOW_S, settings.delivery_timeout_s / 2),
            shared=shared,
        )

    async def admit(self, endpoint_id: str, *, rate_per_s: float | None = None) -> Ticket | float:
        """:meth:`enter`, then (with shared slots) a global slot: a Ticket for
        :meth:`release`, or seconds to defer. Redis unreachable: the local caps decide."""
        admission = self.enter(endpoint_id, rate_per_s=rate_per_s)
        if not isinstance(admission, Ticket) or self.shared is None:
            return admission
        try:
            holder = await self.shared.acquire(endpoint_id, admission.cap)
        except Exception as exc:  # Redis away: the per-process cap still holds
            log.warning("shared delivery caps unavailable (%s); per-process caps apply", exc)
            return admission
        if holder is not None:
            return dataclasses.replace(admission, holder=holder)
        self.leave(admission, answered=False)
        lane = self._lanes[endpoint_id]
        return self._deferral(lane, self._clock(), 0.0, admission.cap)

    async def release(self, ticket: Ticket) -> None:
        """An attempt admitted by :meth:`admit` ended."""
        self.leave(ticket)
        if ticket.holder is not None and self.shared is not None:
            try:
                await self.shared.release(ticket.endpoint_id, ticket.holder)
            except Exception as exc:  # the holder expires by itself
                log.warning("releasing a shared delivery slot failed: %s", exc)

    def enter(self, endpoint_id: str, *, rate_per_s: float | None = None) -> Ticket | float:
        """Admit an attempt (a Ticket for :meth:`leave`) or say how long to defer it."""
        now = self._clock()
        lane = self._lanes.setdefault(endpoint_id, _Lane())
        slow = self._is_slow(lane, now)
        cap = self._cap(lane, slow)
        admitted = (
            lane.in_flight < cap
            and now >= lane.not_before
            and self._in_flight < self.total
            and not (slow and self._slow_in_flight >= self.slow_total)
        )
        spacing = 1.0 / rate_per_s if rate_per_s else 0.0
        if admitted:
            lane.in_flight += 1
            self._in_flight += 1
            lane.started.append(now)
            if slow:
                self._slow_in_flight += 1
            lane.not_before = max(lane.not_before, now) + spacing
            return Ticket(endpoint_id, now, slow, cap)
        return self._deferral(lane, now, spacing, cap)

    def _deferral(self, lane: _Lane, now: float, spacing: float, cap: int) -> float:
        """Seconds to defer a turned-away attempt: its slot in the endpoint's virtual queue."""
        per_request = max(spacing, lane.ewma_s / cap, MIN_DEFER_S / 2)
        lane.reserved_until = max(lane.reserved_until, lane.not_before, now) + per_request
        delay = min(max(lane.reserved_until - now, MIN_DEFER_S), MAX_DEFER_S)
        return delay * random.uniform(1 - DEFER_JITTER, 1 + DEFER_JITTER)

    def leave(self, ticket: Ticket, *, answered: bool = True) -> None:
        """An admitted attempt ended (``answered=False``: it never started)."""
        lane = self._lanes.get(ticket.endpoint_id)
        if lane is None or ticket.started not in lane.started:
            return
        now = self._clock()
        lane.started.remove(ticket.started)
        lane.in_flight -= 1
        self._in_flight -= 1
        if ticket.slow:
            self._slow_in_flight -= 1
        if not answered:
            return
        duration = now - ticket.started
        if lane.answered:
            lane.ewma_s = (1 - EWMA_ALPHA) * lane.ewma_s + EWMA_ALPHA * duration
        else:
            lane.ewma_s = duration
            lane.answered = True
        if lane.in_flight == 0 and lane.reserved_until < now:
            lane.reserved_until = 0.0

    def pause(self, endpoint_id: str, seconds: float) -> None:
        """Start no attempt to this endpoint for ``seconds`` (it answered Retry-After)."""
        lane = self._lanes.setdefault(endpoint_id, _Lane())
        lane.not_before = max(lane.not_before, self._clock() + seconds)

    def _cap(self, lane: _Lane, slow: bool) -> int:
        """Attempts this endpoint may have in flight now."""
        if slow:
            return 1
        return self.per_endpoint if lane.answered else min(PROBE_CAP, self.per_endpoint)

    def _is_slow(self, lane: _Lane, now: float) -> bool:
        return lane.ewma_s >= self.slow_s or any(now - t >= self.slow_s for t in lane.started)
