"""The sign-in throttle: failed attempts per key in a sliding minute (pure, in memory)."""

from __future__ import annotations

import time
from collections import deque


class LoginThrottle:
    """Failed sign-ins per key (address + e-mail) in a sliding minute, per process.

    In memory on purpose: it is a brake on password guessing, not an audit log, and it
    must not turn into a database write per failed attempt."""

    WINDOW_S = 60.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        window = self._window(key)
        if len(window) < self.limit:
            return None
        return max(1, int(window[0] + self.WINDOW_S - time.monotonic()) + 1)

    def failed(self, key: str) -> None:
        """Count a failed attempt."""
        if len(self._failures) > 10_000:
            self._failures.clear()
        self._window(key).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        """Forget the key's failures."""
        self._failures.pop(key, None)

    def _window(self, key: str) -> deque[float]:
        window = self._failures.setdefault(key, deque())
        cutoff = time.monotonic() - self.WINDOW_S
        while window and window[0] < cutoff:
            window.popleft()
        return window
