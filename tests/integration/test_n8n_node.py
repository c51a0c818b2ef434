"""The n8n community node package (integrations/n8n) against a real ``smshub serve``.

Builds the package once (``npm ci`` + ``npm run build``, i.e. ``tsc``), lints it with n8n's
community-node rules, then runs its ``node --test`` suite with the hub's URL and an API key:
the trigger subscribes a REST hook on activation, an inbound SMS on the simulator channel
reaches it with a valid Standard Webhooks signature (a tampered one is refused), deactivation
removes the hook, and "send SMS" reaches the fake gateway exactly once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import node_packages
from tests.fakes.providers import FakeProvider
from tests.fault.server import Server

pytestmark = pytest.mark.slow

PACKAGE = Path(__file__).parents[2] / "integrations" / "n8n"
SIM_SECRET = "simulator-secret-n8n"
SIM_NUMBER = "+15550100000"
GATEWAY_KEY = "mysmsgate-key"


def npm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``npm ARGS`` in the package, output captured."""
    return node_packages.npm(PACKAGE, *args, env=env)


@pytest.fixture(scope="module")
def built() -> Path:
    """The package installed from its lock file and compiled by tsc, once per run."""
    node_packages.npm_ci(PACKAGE, "builds the n8n package")
    build = npm("run", "build")
    assert build.returncode == 0, build.stdout + build.stderr
    return PACKAGE


def test_the_package_lints_clean_with_n8ns_community_node_rules(built: Path) -> None:
    lint = npm("run", "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr


async def test_the_nodes_against_a_running_hub(
    built: Path, tmp_path: Path, database_url: str
) -> None:
    async with FakeProvider("mysmsgate", api_key=GATEWAY_KEY) as gateway:
        # The trigger's receiver listens on loopback: the SSRF guard must let the hub post there.
        server = Server(tmp_path, database_url, SMSHUB_ALLOW_PRIVATE_DESTINATIONS="true")
        try:
            await server.start()
            key = await create_api_key(server)
            env = await hub_fixture_env(server, key, gateway.base_url)
            result = await asyncio.to_thread(npm, "test", env={**os.environ, **env})
            print(result.stdout, result.stderr, sep="\n")
            assert result.returncode == 0, result.stdout + result.stderr
        finally:
            server.kill()
        sends = [r for r in gateway.requests if r.path == "/api/v1/send"]
        assert len(sends) == 1  # "send SMS" twice in one execution: one SMS
        assert sends[0].json()["message"] == "Hello from n8n"


async def create_api_key(server: Server) -> str:
    """A key from the CLI, as a user makes one for n8n."""
    created = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "hub.cli", "apikey", "create", "--name", "n8n"),
        env=server.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(created.communicate(), 60)
    assert created.returncode == 0, err.decode()
    return out.decode().strip()


async def hub_fixture_env(server: Server, key: str, gateway_url: str) -> dict[str, str]:
    """A simulator channel (inbound SMS) and a MySMSGate channel on the fake (sending)."""
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth) as api:
        sim = await api.post(
            "/api/v1/channels",
            json={
                "connector": "simulator",
                "name": "Simulator",
                "webhook_secret": SIM_SECRET,
                "config": {"phone_number": SIM_NUMBER},
            },
        )
        assert sim.status_code == 201, sim.text
        gateway = await api.post(
            "/api/v1/channels",
            json={
                "connector": "mysmsgate",
                "name": "Gateway",
                "config": {"api_key": GATEWAY_KEY, "base_url": gateway_url},
            },
        )
        assert gateway.status_code == 201, gateway.text
    return {
        "HUB_URL": server.url,
        "HUB_API_KEY": key,
        "SIM_CHANNEL_ID": sim.json()["id"],
        "SIM_SECRET": SIM_SECRET,
        "SIM_NUMBER": SIM_NUMBER,
        "GATEWAY_CHANNEL_ID": gateway.json()["id"],
    }
