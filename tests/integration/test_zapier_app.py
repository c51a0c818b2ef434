"""The Zapier app (integrations/zapier) against a real ``smshub serve``.

Installs the app from its lock file once (``npm ci``), lints it (eslint), then runs its
``node --test`` suite with the platform's ``appTester``: the app definition validates
against zapier-platform-schema (what ``zapier validate`` checks locally), and, with the
hub's URL and an API key, subscribing a trigger creates a hook, an inbound SMS on the
simulator channel reaches the trigger's target URL with a valid Standard Webhooks
signature (a tampered one is refused by ``perform``), unsubscribing removes the hook, and
"Send SMS" hands one message to the gateway (the same idempotency key twice: one SMS).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import node_packages
from tests.fault.server import Server
from tests.integration.test_n8n_node import create_api_key

pytestmark = pytest.mark.slow

APP = Path(__file__).parents[2] / "integrations" / "zapier"
SIM_SECRET = "simulator-secret-zapier"
SIM_NUMBER = "+15550100000"


def npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``npm ARGS`` in the app's directory, output captured."""
    return node_packages.npm(APP, *args, env=env)


@pytest.fixture(scope="module")
def installed() -> Path:
    """The app's dependencies installed from package-lock.json, once per run."""
    return node_packages.npm_ci(APP, "runs the Zapier app's tests")


def test_the_app_lints_clean_with_eslint(installed: Path) -> None:
    lint = npm("run", "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr


async def test_the_app_against_a_running_hub(
    installed: Path, tmp_path: Path, database_url: str
) -> None:
    # The stand-in for hooks.zapier.com listens on loopback: the SSRF guard must allow it.
    server = Server(
        tmp_path,
        database_url,
        SMSHUB_ALLOW_PRIVATE_DESTINATIONS="true",
        SMSHUB_SEND_SPACING_MAX_S="0",
    )
    try:
        await server.start()
        key = await create_api_key(server)
        await simulator_channel(server, key)
        env = {
            **server.env,  # the simulate command reads the hub's database and secret key
            "HUB_URL": server.url,
            "HUB_API_KEY": key,
            "HUB_SIMULATE": json.dumps([sys.executable, "-m", "hub.cli", "simulate", "inbound"]),
            "PATH": os.environ.get("PATH", ""),
        }
        result = await asyncio.to_thread(npm, "test", env=env)
        print(result.stdout, result.stderr, sep="\n")
        assert result.returncode == 0, result.stdout + result.stderr
        # Every test of the suite ran against the hub; none was skipped.
        assert "# skipped 0" in result.stdout and "# fail 0" in result.stdout
        assert "# pass 9" in result.stdout, result.stdout
    finally:
        server.kill()


async def simulator_channel(server: Server, key: str) -> None:
    """A simulator channel that reports delivery at once (inbound SMS and Send SMS)."""
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}
    ) as api:
        resp = await api.post(
            "/api/v1/channels",
            json={
                "connector": "simulator",
                "name": "Simulator",
                "webhook_secret": SIM_SECRET,
                "config": {"phone_number": SIM_NUMBER, "delivery_delay_s": 0},
            },
        )
        assert resp.status_code == 201, resp.text
