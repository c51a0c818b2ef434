"""Flow secrets: the names flows use as ``{{ secrets.NAME }}``, their values encrypted.

The API and the UI see a secret's name and dates, never its value (``********``). A value
leaves the hub only inside the request a flow step sends: :func:`values_of` reads the
values when the step sends (hub.services.flow_effects), so a replaced value is what the
next request carries, a retry or a resumed step of a run that began before included. The
engine renders placeholders (flows.secrets) under :func:`secret_tokens`, a key derived
from the hub's secret key, so every process of one hub resolves every other's.
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows import SECRET_MASK, SECRET_NAME, SECRET_NAME_RULE, SecretTokens
from hub.context import Hub
from hub.errors import Conflict, NotFound, Unprocessable
from hub.ids import new_id
from hub.models import FlowSecret, utcnow
from hub.store import Unit, fetch_all, placeholders

#: What the API and the UI show instead of a value.
MASK = SECRET_MASK
#: Longest value accepted, in characters (a token, a password, a PEM key fits).
MAX_VALUE = 8192


def check_name(raw: str) -> str:
    """The name, trimmed; 422 unless it is ``[A-Z][A-Z0-9_]*`` and at most 64 long."""
    name = raw.strip()
    if SECRET_NAME.fullmatch(name) is None:
        raise Unprocessable(
            f"a secret's name is {SECRET_NAME_RULE}",
            code="invalid_secret_name",
            details=[{"field": "name", "message": f"use {SECRET_NAME_RULE}"}],
        )
    return name


def check_value(raw: str) -> str:
    """The value as given; 422 when empty or longer than :data:`MAX_VALUE`."""
    if not raw or len(raw) > MAX_VALUE:
        raise Unprocessable(
            f"a secret's value is 1 to {MAX_VALUE} characters",
            code="invalid_secret_value",
            details=[{"field": "value", "message": f"1 to {MAX_VALUE} characters"}],
        )
    return raw


def secret_tokens(hub: Hub) -> SecretTokens:
    """The placeholders' key: the same in every process that shares the secret key."""
    return SecretTokens(hub.box.derive("flow-secret-placeholders"))


def _exists(name: str) -> Conflict:
    return Conflict(
        f"a secret named {name!r} exists (replace its value with PUT /api/v1/secrets/{name})",
        code="secret_exists",
        details=[{"field": "name", "message": "already taken"}],
    )


async def _by_name(session: AsyncSession, name: str) -> FlowSecret | None:
    found = await session.execute(sa.select(FlowSecret).where(col(FlowSecret.name) == name))
    return found.scalar_one_or_none()


async def _existing(session: AsyncSession, name: str) -> FlowSecret:
    row = await _by_name(session, name)
    if row is None:
        raise NotFound(f"secret {name!r} not found", code="secret_not_found")
    return row


async def create_secret(hub: Hub, name: str, value: str) -> FlowSecret:
    """A new secret; 409 ``secret_exists`` when the name is taken (also by a create at the
    same moment in another process: the unique name decides)."""
    name, value = check_name(name), check_value(value)
    try:
        async with hub.db.write() as session:
            if await _by_name(session, name) is not None:
                raise _exists(name)
            row = FlowSecret(id=new_id("sec"), name=name, value_enc=hub.box.encrypt(value))
            session.add(row)
    except sa.exc.IntegrityError as exc:
        raise _exists(name) from exc
    return row


async def list_secrets(hub: Hub) -> list[FlowSecret]:
    """Every secret, by name."""
    async with hub.db.read() as session:
        found = await session.execute(sa.select(FlowSecret).order_by(col(FlowSecret.name)))
        return list(found.scalars())


async def get_secret(hub: Hub, name: str) -> FlowSecret:
    """One secret (its row: the value stays encrypted); 404 when unknown."""
    async with hub.db.read() as session:
        return await _existing(session, name)


async def replace_secret(hub: Hub, name: str, value: str) -> FlowSecret:
    """A new value for a secret: the next request that uses it sends this one."""
    value = check_value(value)
    async with hub.db.write() as session:
        row = await _existing(session, name)
        row.value_enc = hub.box.encrypt(value)
        row.updated_at = utcnow()
        session.add(row)
    return row


async def delete_secret(hub: Hub, name: str) -> None:
    """Delete a secret: a step that names it from now on fails (its error port)."""
    async with hub.db.write() as session:
        await session.delete(await _existing(session, name))


async def values_of(hub: Hub, names: Collection[str]) -> dict[str, str]:
    """Name -> value of the secrets that exist among ``names`` (read now, decrypted)."""
    if not names:
        return {}
    rows = await hub.store.read(_encrypted(sorted(names)))
    return {name: hub.box.decrypt(token) for name, token in rows}


def _encrypted(names: list[str]) -> Unit[list[tuple[str, str]]]:
    rows = yield from fetch_all(
        f"SELECT name, value_enc FROM secrets WHERE name IN ({placeholders(len(names))})", names
    )
    return [(str(row[0]), str(row[1])) for row in rows]


__all__ = [
    "MASK",
    "MAX_VALUE",
    "check_name",
    "check_value",
    "create_secret",
    "delete_secret",
    "get_secret",
    "list_secrets",
    "replace_secret",
    "secret_tokens",
    "values_of",
]
