"""Prefixed, time-sortable ids: ``msg_01JD…`` sorts by creation time like a ULID."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower-case


def new_id(prefix: str) -> str:
    """A new id: 48 bits of milliseconds then 80 random bits, base32, with a prefix."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def new_token(nbytes: int = 24) -> str:
    """An unguessable URL-safe token."""
    import secrets

    return secrets.token_urlsafe(nbytes)
