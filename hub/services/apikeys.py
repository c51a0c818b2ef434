"""API keys: shown once at creation, stored as SHA-256 hashes."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.crypto import hash_token
from hub.errors import NotFound
from hub.ids import new_id
from hub.models import ApiKey, utcnow

KEY_PREFIX = "shk_"
#: How often (seconds) a key's "last used" time is written: not on every request.
LAST_USED_RESOLUTION_S = 60.0
#: Seconds a process trusts a cached key lookup (revocations apply within this time).
AUTH_CACHE_TTL_S = 5.0

_cache: dict[str, tuple[float, str | None]] = {}


async def create_api_key(hub: Hub, name: str) -> tuple[ApiKey, str]:
    """A new key; the plain key is returned only here."""
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(id=new_id("key"), name=name, prefix=plain[:12], key_hash=hash_token(plain))
    async with hub.db.write() as session:
        session.add(row)
    return row, plain


async def authenticate(hub: Hub, token: str) -> str | None:
    """The id of the live key ``token`` belongs to, or None."""
    if not token.startswith(KEY_PREFIX):
        return None
    digest = hash_token(token)
    hit = _cache.get(digest)
    if hit is not None and time.monotonic() - hit[0] < AUTH_CACHE_TTL_S:
        return hit[1]
    async with hub.db.read() as session:
        found = await session.execute(sa.select(ApiKey).where(col(ApiKey.key_hash) == digest))
        row = found.scalar_one_or_none()
    key_id = row.id if row is not None and row.revoked_at is None else None
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[digest] = (time.monotonic(), key_id)
    if row is not None and key_id is not None:
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > timedelta(
            seconds=LAST_USED_RESOLUTION_S
        ):
            async with hub.db.write() as session:
                await session.execute(
                    sa.update(ApiKey).where(col(ApiKey.id) == row.id).values(last_used_at=now)
                )
    return key_id


async def list_api_keys(hub: Hub) -> list[ApiKey]:
    """Every key, newest first (hashes never leave the database)."""
    async with hub.db.read() as session:
        rows = await session.execute(sa.select(ApiKey).order_by(col(ApiKey.id).desc()))
        return list(rows.scalars())


async def revoke_api_key(hub: Hub, key_id: str) -> None:
    """Revoke a key; it stops working within AUTH_CACHE_TTL_S everywhere."""
    async with hub.db.write() as session:
        row = await session.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"API key {key_id!r} not found")
        row.revoked_at = row.revoked_at or utcnow()
        session.add(row)
    _cache.clear()
