"""Users of the browser UI: accounts, argon2 password hashes, sessions, sign-in throttling.

Sessions are server-side. The cookie carries a random 32-byte token; the database keeps
only its SHA-256 (the row id) with the user, a CSRF token and the expiry. Signing out
deletes the row, so a copied cookie dies with it, and a stolen database yields no live
cookie. Every unsafe browser request must echo the session's CSRF token in a form field
or header (the synchronizer-token pattern); :func:`csrf_matches` compares them.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import col

from hub.context import Hub
from hub.crypto import hash_token
from hub.errors import ApiError, Conflict, Unprocessable
from hub.ids import new_id
from hub.models import User, UserSession, utcnow

#: Name of the session cookie.
SESSION_COOKIE = "smshub_session"
#: Header carrying the CSRF token on fetch / htmx requests.
CSRF_HEADER = "x-csrf-token"
#: Form field carrying the CSRF token on plain form posts.
CSRF_FIELD = "_csrf"
#: Methods that change nothing and so need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Shortest password accepted.
MIN_PASSWORD_CHARS = 10
#: Longest password accepted (argon2 takes any length; this bounds the work per request).
MAX_PASSWORD_CHARS = 1000
#: How often (seconds) a session's "last seen" time is written: not on every request.
LAST_SEEN_RESOLUTION_S = 60.0

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the e-mail is unknown, so both cases take the same
    time. Made on first use: argon2 takes 64 MiB for it, which would otherwise set the
    process's peak memory at import."""
    return _hasher.hash("not a real password, only spends the same time")


class CsrfFailed(ApiError):
    status_code = 403
    code = "csrf_failed"


class TooManyAttempts(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, details: Any = None, retry_after: int = 60) -> None:
        super().__init__(message, details=details)
        #: Seconds until the next attempt may be made (the answer's Retry-After).
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignedIn:
    """The user behind a live session."""

    user_id: str
    email: str
    session_id: str
    csrf_token: str


# --- accounts ------------------------------------------------------------------------------


def _field_error(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, details=[{"field": field, "message": message}])


def normalize_email(email: str) -> str:
    """The e-mail as stored (trimmed, lower-case); 422 naming the field when malformed."""
    value = (email or "").strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise _field_error("email", "enter an e-mail address like you@example.com")
    return value


def check_password(password: str) -> None:
    """422 naming the field unless the password is long enough (and not absurdly long)."""
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise _field_error("password", f"use at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise _field_error("password", f"use at most {MAX_PASSWORD_CHARS} characters")


async def hash_password(password: str) -> str:
    """An argon2id hash (computed off the event loop: it is deliberately slow)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


async def count_users(hub: Hub) -> int:
    """How many accounts exist."""
    async with hub.db.read() as session:
        found = await session.execute(sa.select(sa.func.count()).select_from(User))
        return int(found.scalar() or 0)


async def users_exist(hub: Hub) -> bool:
    """True once any account exists (cached: accounts are never deleted from the UI)."""
    if hub.users_exist:
        return True
    hub.users_exist = await count_users(hub) > 0
    return hub.users_exist


async def create_user(hub: Hub, email: str, password: str, *, first_only: bool = False) -> User:
    """A new account. ``first_only``: refuse (409) when any account exists (first-start setup)."""
    address = normalize_email(email)
    check_password(password)
    digest = await hash_password(password)
    async with hub.db.write() as session:
        if (
            first_only
            and (await session.execute(sa.select(sa.func.count()).select_from(User))).scalar()
        ):
            raise Conflict("the admin account exists already; sign in", code="setup_done")
        taken = await session.execute(sa.select(col(User.id)).where(col(User.email) == address))
        if taken.first() is not None:
            raise Conflict(
                f"{address} has an account already",
                code="email_taken",
                details=[{"field": "email", "message": "this e-mail has an account already"}],
            )
        user = User(id=new_id("usr"), email=address, password_hash=digest)
        session.add(user)
    hub.users_exist = True
    return user


async def set_password(hub: Hub, email: str, password: str) -> User:
    """Replace a user's password and end all their sessions."""
    address = normalize_email(email)
    check_password(password)
    digest = await hash_password(password)
    async with hub.db.write() as session:
        user = (
            await session.execute(sa.select(User).where(col(User.email) == address))
        ).scalar_one_or_none()
        if user is None:
            raise _field_error("email", f"no account for {address}")
        user.password_hash = digest
        session.add(user)
        await session.execute(sa.delete(UserSession).where(col(UserSession.user_id) == user.id))
    return user


async def authenticate_password(hub: Hub, email: str, password: str) -> User | None:
    """The user when e-mail and password match, else None (same time either way)."""
    address = (email or "").strip().lower()
    async with hub.db.read() as session:
        user = (
            await session.execute(sa.select(User).where(col(User.email) == address))
        ).scalar_one_or_none()
    if len(password or "") > MAX_PASSWORD_CHARS:
        return None
    ok = await _verify(user.password_hash if user else _dummy_hash(), password or "")
    if user is None or not ok:
        return None
    changes: dict[str, object] = {"last_login_at": utcnow()}
    if _hasher.check_needs_rehash(user.password_hash):
        changes["password_hash"] = await hash_password(password)
    async with hub.db.write() as session:
        await session.execute(sa.update(User).where(col(User.id) == user.id).values(**changes))
    return user


# --- sessions ------------------------------------------------------------------------------


async def create_session(hub: Hub, user: User, *, ip: str, user_agent: str) -> str:
    """Start a session for ``user``; returns the token for the cookie (shown only here)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(
        id=hash_token(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        user_agent=user_agent[:300],
        ip=ip[:64],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=hub.settings.session_ttl_s),
    )
    async with hub.db.write() as session:
        # Sign-in is a good moment to forget every expired session of anyone.
        await session.execute(sa.delete(UserSession).where(col(UserSession.expires_at) < now))
        session.add(row)
    return token


async def load_session(hub: Hub, token: str | None) -> SignedIn | None:
    """The signed-in user of a session cookie, or None (unknown, ended or expired)."""
    if not token or len(token) > 200:
        return None
    sid = hash_token(token)
    async with hub.db.read() as session:
        found = (
            await session.execute(
                sa.select(UserSession, User)
                .join(User, col(User.id) == col(UserSession.user_id))
                .where(col(UserSession.id) == sid)
            )
        ).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if row.expires_at <= now:
        return None
    if (now - row.last_seen_at).total_seconds() > LAST_SEEN_RESOLUTION_S:
        async with hub.db.write() as session:
            await session.execute(
                sa.update(UserSession).where(col(UserSession.id) == sid).values(last_seen_at=now)
            )
    return SignedIn(user_id=user.id, email=user.email, session_id=sid, csrf_token=row.csrf_token)


async def end_session(hub: Hub, token: str | None) -> None:
    """Sign out: the session row goes, so the cookie is worthless from now on."""
    if not token:
        return
    async with hub.db.write() as session:
        await session.execute(
            sa.delete(UserSession).where(col(UserSession.id) == hash_token(token))
        )


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the session's CSRF token with the one a request sent."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


# --- sign-in ----------------------------------------------------------------------------------


async def sign_in(hub: Hub, email: str, password: str, *, ip: str, user_agent: str) -> str:
    """Check the password (throttled per address + e-mail); returns a new session token.

    422 naming the field on a wrong e-mail or password, 429 when throttled."""
    key = f"{ip}|{(email or '').strip().lower()}"
    guard = hub.login_throttle
    wait = await guard.retry_after(key)
    if wait is not None:
        raise TooManyAttempts(
            f"too many failed sign-ins; try again in {wait} s",
            details=[{"field": "password", "message": f"too many attempts; wait {wait} s"}],
            retry_after=wait,
        )
    user = await authenticate_password(hub, email, password)
    if user is None:
        await guard.failed(key)
        raise Unprocessable(
            "wrong e-mail or password",
            code="bad_credentials",
            details=[{"field": "password", "message": "wrong e-mail or password"}],
        )
    await guard.succeeded(key)
    return await create_session(hub, user, ip=ip, user_agent=user_agent)


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "CsrfFailed",
    "SignedIn",
    "TooManyAttempts",
    "authenticate_password",
    "count_users",
    "create_session",
    "create_user",
    "csrf_matches",
    "end_session",
    "load_session",
    "set_password",
    "sign_in",
    "users_exist",
]
