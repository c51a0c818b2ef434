"""The sign-in throttle: failed attempts per key in a sliding minute, shared by every process.

A brake on password guessing, not an audit log. The count must be the same in every
process (N API processes must not give a guesser N times the attempts), so it lives in
Redis when ``settings.redis_url`` is set (a sorted set per key, expiring after the
window) and in the ``login_failures`` table otherwise (SQLite with ``--processes N``,
PostgreSQL). Either way an attempt costs one read, a *failed* attempt one write (which
also drops the rows the window has left behind), a successful one a delete.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from sqlmodel import col

from hub.columns import utcnow
from hub.db import Database
from hub.models import LoginFailure
from hub.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: The sliding window (seconds) failures are counted in.
WINDOW_S = 60.0
#: Prefix of the Redis keys (one sorted set per throttled key).
REDIS_PREFIX = "smshub:login:"


class LoginThrottle(Protocol):
    """Failed sign-ins per key (address + e-mail) in a sliding minute."""

    limit: int

    async def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may try now."""

    async def failed(self, key: str) -> None:
        """Count a failed attempt."""

    async def succeeded(self, key: str) -> None:
        """Forget the key's failures."""


def login_throttle(settings: Settings, db: Database, redis: Redis | None) -> LoginThrottle:
    """The throttle of a process: in Redis when there is one, else in the database."""
    limit = settings.login_attempts_per_min
    return RedisThrottle(redis, limit) if redis is not None else DatabaseThrottle(db, limit)


def _digest(key: str) -> str:
    # No e-mail addresses at rest, and a fixed-size key.
    return hashlib.sha256(key.encode()).hexdigest()


def _wait(oldest_age_s: float) -> int:
    """Whole seconds (at least 1) until a failure ``oldest_age_s`` old leaves the window."""
    return max(1, math.ceil(WINDOW_S - oldest_age_s))


class DatabaseThrottle:
    """The throttle in the ``login_failures`` table (one row per failure, a minute long)."""

    def __init__(self, db: Database, limit: int) -> None:
        self.db = db
        self.limit = limit

    async def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        now = utcnow()
        async with self.db.read() as session:
            count, oldest = (
                await session.execute(
                    sa.select(sa.func.count(), sa.func.min(col(LoginFailure.at))).where(
                        col(LoginFailure.key) == _digest(key),
                        col(LoginFailure.at) > now - timedelta(seconds=WINDOW_S),
                    )
                )
            ).one()
        if count < self.limit or not isinstance(oldest, datetime):
            return None
        return _wait((now - oldest).total_seconds())

    async def failed(self, key: str) -> None:
        """Count a failed attempt (and drop every failure older than the window)."""
        now = utcnow()
        async with self.db.write() as session:
            await session.execute(
                sa.delete(LoginFailure).where(
                    col(LoginFailure.at) <= now - timedelta(seconds=WINDOW_S)
                )
            )
            session.add(LoginFailure(key=_digest(key), at=now))

    async def succeeded(self, key: str) -> None:
        """Forget the key's failures."""
        async with self.db.write() as session:
            await session.execute(
                sa.delete(LoginFailure).where(col(LoginFailure.key) == _digest(key))
            )


class RedisThrottle:
    """The throttle in Redis: a sorted set of failure times per key, expiring with the
    window (so nothing needs cleaning up)."""

    def __init__(self, redis: Redis, limit: int) -> None:
        self.redis = redis
        self.limit = limit

    async def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        now = time.time()
        name = REDIS_PREFIX + _digest(key)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcount(name, now - WINDOW_S, "+inf")
            pipe.zrangebyscore(name, now - WINDOW_S, "+inf", start=0, num=1, withscores=True)
            count, oldest = await pipe.execute()
        if int(count) < self.limit or not oldest:
            return None
        return _wait(now - float(oldest[0][1]))

    async def failed(self, key: str) -> None:
        """Count a failed attempt."""
        now = time.time()
        name = REDIS_PREFIX + _digest(key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(name, {f"{now:.6f}:{secrets.token_hex(4)}": now})
            pipe.zremrangebyscore(name, "-inf", now - WINDOW_S)
            pipe.expire(name, int(WINDOW_S) + 1)
            await pipe.execute()

    async def succeeded(self, key: str) -> None:
        """Forget the key's failures."""
        await self.redis.delete(REDIS_PREFIX + _digest(key))
