"""Shared pieces of the webhook signature schemes: keyed hashes and the replay window."""

from __future__ import annotations

import hmac
import re
from datetime import datetime

from connectors.base import SignatureError, constant_time_equals

#: How far a signed timestamp may be from the hub's clock, either way (providers say ±5 min).
REPLAY_WINDOW_S = 300
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def hmac_hex(key: str, message: bytes, digest: str = "sha256") -> str:
    """Lower-case hex HMAC of ``message`` under ``key``."""
    return hmac.new(key.encode(), message, digest).hexdigest()


def require_secret(secret: str | None) -> str:
    """The signing key, or SignatureError when the channel has none configured."""
    if not secret:
        raise SignatureError("no signing secret is configured for this channel")
    return secret


def require_header(value: str | None, name: str) -> str:
    """A signature header's value, or SignatureError naming the missing header."""
    if value is None or not value.strip():
        raise SignatureError(f"missing {name} header")
    return value.strip()


def check_hex(expected: str, given: str, what: str) -> None:
    """Compare hex digests in constant time, ignoring case (some senders upper-case)."""
    if not constant_time_equals(expected.lower(), given.lower()):
        raise SignatureError(f"{what} does not match")


def unix_seconds(value: str, what: str) -> int:
    """A signed timestamp as integer unix seconds, or SignatureError."""
    value = value.strip()
    if not _UNIX_SECONDS.fullmatch(value):
        raise SignatureError(f"{what} is not unix seconds: {value[:40]!r}")
    return int(value)


def check_window(signed_at: float, now: datetime, window_s: int = REPLAY_WINDOW_S) -> None:
    """Reject a signature made more than ``window_s`` seconds before or after ``now``."""
    skew = now.timestamp() - signed_at
    if abs(skew) > window_s:
        direction = "old" if skew > 0 else "in the future"
        raise SignatureError(
            f"signed timestamp is {abs(skew):.0f}s {direction} (allowed ±{window_s}s); "
            "a replay, or a clock out of sync"
        )
