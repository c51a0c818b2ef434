"""Fixtures of the integration tests that drive the UI."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import Web, set_up_admin


@pytest.fixture
async def web(client: httpx.AsyncClient) -> Web:
    """The admin, signed in through /setup, as a browser stand-in."""
    return Web(client, await set_up_admin(client))
