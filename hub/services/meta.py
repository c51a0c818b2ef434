"""The secret-key guard: the database remembers which key its secrets are encrypted with.

Every stored gateway token and webhook secret is encrypted with the hub's key
(``SMSHUB_SECRET_KEY``, or the ``secret.key`` file generated into the var folder). A
process started in another folder against the same database used to generate a key of
its own, and every channel then failed to decrypt. Now :func:`confirm_secret_key` runs
before a process does anything (``smshub serve``, ``smshub worker``, the other commands,
an app's start-up) and holds the process to one rule:

* the first process to start records the key's check value (an HMAC of a fixed label, it
  reveals nothing of the key) in ``hub_meta``;
* a key whose check value differs is refused (:class:`SecretKeyError`, naming
  ``SMSHUB_SECRET_KEY``);
* a key is generated into ``<var_dir>/secret.key`` only for a database that holds no
  check value and no encrypted secret; otherwise the process refuses, naming the folder
  where the key was expected.

A database from before the check value existed gets one on its first start, once a
stored secret is shown to decrypt with the key.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from hub.context import Hub
from hub.crypto import KEY_SETTING, SecretKeyMismatch, key_path
from hub.delivery.models import Endpoint
from hub.models import Channel, Flow, HubMeta, utcnow

#: The ``hub_meta`` row holding the key's check value.
KEY_CHECK = "secret_key_check"

#: Encrypted columns, to test a key against a database that has no check value yet.
ENCRYPTED_COLUMNS: tuple[Any, ...] = (
    Channel.webhook_secret_enc,
    Channel.secrets_enc,
    Channel.url_token_enc,
    Flow.http_token_enc,
    Endpoint.secret_enc,
)


class SecretKeyError(Exception):
    """This process's key cannot be used with this database (the message says what to do)."""


def _mismatch() -> SecretKeyError:
    return SecretKeyError(
        f"{KEY_SETTING} does not match this database: its stored secrets were encrypted "
        f"with another key; start every process with the same {KEY_SETTING} "
        "(or the same secret.key file)"
    )


def _missing(hub: Hub) -> SecretKeyError:
    path = key_path(hub.settings.var_dir).absolute()
    return SecretKeyError(
        f"no secret key: {KEY_SETTING} is not set and {path} does not exist, but this "
        f"database already holds secrets encrypted with a key; set {KEY_SETTING} or put "
        f"that key file at {path} (no new key was generated)"
    )


async def confirm_secret_key(hub: Hub) -> None:
    """Hold the hub's key to the database's (see the module docstring); SecretKeyError
    when the process must not start."""
    box = hub.box
    stored = await stored_key_check(hub)
    if stored is None:
        await _check_against_secrets(hub)
        try:
            created = box.save_generated()
        except FileExistsError:
            raise SecretKeyError(
                f"{key_path(hub.settings.var_dir).absolute()} appeared while this process "
                "started (another one generated it); start this one again"
            ) from None
        stored = await _record_key_check(hub, box.check_value())
        if stored != box.check_value() and created:
            # Another process with another key won the race: ours encrypted nothing.
            key_path(hub.settings.var_dir).unlink(missing_ok=True)
    if stored != box.check_value():
        raise _missing(hub) if box.generated else _mismatch()


async def stored_key_check(hub: Hub) -> str | None:
    """The key's check value as the database keeps it (None before the first start)."""
    async with hub.db.read() as session:
        exists = await (await session.connection()).run_sync(
            lambda conn: sa.inspect(conn).has_table(HubMeta.__tablename__)
        )
        if not exists:
            raise SecretKeyError(
                "the database schema is older than this smshub: run `smshub db upgrade` first"
            )
        row = await session.get(HubMeta, KEY_CHECK)
    return row.value if row is not None else None


async def _check_against_secrets(hub: Hub) -> None:
    """Before the first check value: a stored secret must decrypt with the key."""
    sample = await _stored_secret(hub)
    if sample is None:
        return
    if hub.box.generated:
        raise _missing(hub)
    try:
        hub.box.decrypt(sample)
    except SecretKeyMismatch:
        raise _mismatch() from None


async def _stored_secret(hub: Hub) -> str | None:
    """Any one encrypted value in the database, or None when it holds none."""
    async with hub.db.read() as session:
        for column in ENCRYPTED_COLUMNS:
            value = (
                await session.execute(sa.select(column).where(col(column).is_not(None)).limit(1))
            ).scalar()
            if value:
                return str(value)
    return None


async def _record_key_check(hub: Hub, value: str) -> str:
    """Store ``value`` unless a check value is there already; the one stored."""
    try:
        async with hub.db.write() as session:
            if await session.get(HubMeta, KEY_CHECK) is None:
                session.add(HubMeta(name=KEY_CHECK, value=value, updated_at=utcnow()))
    except sa.exc.IntegrityError:
        pass  # another process recorded its key at the same moment: compare with that
    return await stored_key_check(hub) or value
