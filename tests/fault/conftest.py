"""Fixtures for fault tests: child-process servers that are always killed at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hub.app import build_hub
from hub.context import Hub
from tests.conftest import make_settings
from tests.fault.server import Server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


@pytest.fixture
async def setup_hub(tmp_path: Path, database_url: str) -> AsyncIterator[Hub]:
    hub = build_hub(make_settings(tmp_path, database_url))
    yield hub
    await hub.close()
