"""What the hypothesis fuzz tests share: a hub on a private event loop, JSON-ish junk, and
the "never a 500, errors are JSON" check.

Hypothesis drives synchronous test functions, so each rig owns an ``asyncio.Runner`` and
runs the hub, its database and an in-process client on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hub.app import build_hub, create_app
from hub.context import Hub
from tests.conftest import make_settings

T = TypeVar("T")

#: Examples per fuzz test: enough to reach every branch, few enough for a 10-minute suite.
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: Integers where storage breaks: the 32-bit (PostgreSQL integer) and 64-bit (SQLite)
#: limits and just past them, negatives, and far past both.
EDGE_INTEGERS = (
    0,
    -1,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**20,
    -(10**20),
)
#: Any integer, the edges above often (plain st.integers() seldom strays past 2^63).
integers = st.sampled_from(EDGE_INTEGERS) | st.integers()

#: Times whose offset pushes them past year 1 or 9999 once converted to UTC.
EDGE_TIMES = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00")

#: Any JSON value, nested a little.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | integers
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)


@dataclass
class Rig:
    """A hub and an HTTP client for its app, on one private event loop."""

    runner: asyncio.Runner
    hub: Hub
    client: httpx.AsyncClient
    #: Whatever the set-up made (ids, headers, tokens), by name.
    things: dict[str, Any] = field(default_factory=dict)

    def run(self, coro: Awaitable[T]) -> T:
        """Run a coroutine on the rig's loop."""
        return self.runner.run(coro)  # type: ignore[arg-type]

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request to the app."""
        return self.run(self.client.request(method, url, **kwargs))


@contextmanager
def hub_rig(
    tmp_path: Path,
    database_url: str,
    setup: Callable[[Hub, httpx.AsyncClient], Awaitable[dict[str, Any]]] | None = None,
    **overrides: Any,
) -> Iterator[Rig]:
    """A rig on a clean database; ``setup`` fills ``rig.things``; everything closed after."""
    runner = asyncio.Runner()
    hub = build_hub(make_settings(tmp_path, database_url, **overrides))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(hub=hub, workers=False)),
        base_url="http://testserver.local",
    )
    rig = Rig(runner, hub, client)
    try:
        if setup is not None:
            rig.things = runner.run(setup(hub, client))
        yield rig
    finally:
        runner.run(client.aclose())
        runner.run(hub.close())
        runner.close()


def assert_clean(resp: httpx.Response, *, json_errors: bool = True) -> None:
    """No 5xx; with ``json_errors`` (the API), every error is the JSON error shape."""
    assert resp.status_code < 500, f"{resp.status_code} {resp.text[:500]}"
    if json_errors and resp.status_code >= 400:
        error = resp.json()["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
