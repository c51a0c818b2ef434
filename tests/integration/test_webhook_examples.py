"""The signature-verification examples of docs/webhooks.md, run for real.

Each file in docs/examples/ (Python, Node.js, PHP, Go, Ruby; standard library only) gets a
delivery a running hub really signed and sent to a local receiver: the genuine one is
accepted (exit 0), a tampered body, another webhook-id, the wrong secret and a stale
timestamp are refused (exit 1); after a secret rotation both secrets are accepted. A
missing interpreter skips (fails under SMSHUB_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from connectors.simulator import event_body, sign_request
from hub.context import Hub
from hub.delivery.signing import new_secret, sign_headers
from tests.conftest import ChannelFactory, drain, service_missing
from tests.fakes.sink import Received, Sink

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
SIM_SECRET = "simulator-secret-123"
SIM_NUMBER = "+15550100000"
ALICE = "+15550001234"


@dataclass(frozen=True)
class Delivery:
    """What a receiver has: the endpoint's secret, the three headers and the raw body."""

    secret: str
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes

    @classmethod
    def of(cls, secret: str, request: Received) -> Delivery:
        h = request.headers
        return cls(
            secret, h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"], request.body
        )


@dataclass(frozen=True)
class Example:
    """One language's example: the program that runs it and what it needs installed."""

    language: str
    file: str
    #: The interpreter or tool it needs on PATH.
    tool: str
    #: Debian package that provides it (named in the skip / failure).
    package: str

    def command(self, work: Path) -> list[str]:
        """The command line before the three header arguments."""
        source = str(EXAMPLES / self.file)
        if self.tool == "go":
            # Built once per test: `go run` would compile again for every case.
            binary = work / "verify_webhook"
            subprocess.run(["go", "build", "-o", str(binary), source], check=True, env=go_env(work))
            return [str(binary)]
        if self.tool == "python3":
            return [sys.executable, source]
        return [self.tool, source]


EXAMPLES_TABLE = [
    Example("Python", "verify_webhook.py", "python3", "python3"),
    Example("Node.js", "verify_webhook.js", "node", "nodejs"),
    Example("PHP", "verify_webhook.php", "php", "php-cli"),
    Example("Go", "verify_webhook.go", "go", "golang-go"),
    Example("Ruby", "verify_webhook.rb", "ruby", "ruby"),
]


def go_env(work: Path) -> dict[str, str]:
    """Go needs a writable build cache and home; the test's own tmp dir."""
    (work / "home").mkdir(exist_ok=True)
    return {
        **os.environ,
        "GOCACHE": str(work / "gocache"),
        "GOPATH": str(work / "gopath"),
        "HOME": str(work / "home"),
    }


def verify(command: list[str], delivery: Delivery) -> subprocess.CompletedProcess[bytes]:
    """Run one example on a delivery: secret in WEBHOOK_SECRET, headers as arguments."""
    return subprocess.run(
        [*command, delivery.webhook_id, delivery.timestamp, delivery.signature],
        input=delivery.body,
        env={**os.environ, "WEBHOOK_SECRET": delivery.secret},
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


async def inbound_sms(client: httpx.AsyncClient, channel_id: str, text: str, key: str) -> None:
    """Alice texts the simulator channel (a signed gateway webhook, as a phone would)."""
    body = event_body(
        "sms.received", event_id=key, from_number=ALICE, to_number=SIM_NUMBER, text=text
    )
    headers = {"content-type": "application/json", **sign_request(SIM_SECRET, body, _now())}
    resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)
    assert resp.status_code == 200, resp.text


def _now() -> datetime:
    return datetime.now(UTC)


async def real_deliveries(
    hub: Hub, client: httpx.AsyncClient, auth: dict[str, str], sink: Sink, channel_id: str
) -> tuple[Delivery, Delivery, str]:
    """A delivery signed with one secret; then, after a rotation, one signed with two.

    Returns both and the old secret."""
    resp = await client.post(
        "/api/v1/endpoints",
        json={"url": sink.url, "event_types": ["sms.received"]},
        headers=auth,
    )
    assert resp.status_code == 201, resp.text
    endpoint = resp.json()
    await inbound_sms(client, channel_id, "Ça marche? ✓", "ex-1")  # non-ASCII body
    await drain(hub)
    assert len(sink.requests) == 1
    first = Delivery.of(endpoint["secret"], sink.requests[0])

    resp = await client.post(f"/api/v1/endpoints/{endpoint['id']}/rotate-secret", headers=auth)
    assert resp.status_code == 200, resp.text
    await inbound_sms(client, channel_id, "second", "ex-2")
    await drain(hub)
    assert len(sink.requests) == 2
    rotated = Delivery.of(resp.json()["secret"], sink.requests[1])
    assert len(rotated.signature.split(" ")) == 2
    return first, rotated, endpoint["secret"]


def forged(genuine: Delivery) -> dict[str, Delivery]:
    """What an attacker could send, each case to be refused."""
    stale_at = datetime.fromtimestamp(int(genuine.timestamp) - 6 * 60, UTC)
    stale = sign_headers(genuine.webhook_id, stale_at, genuine.body.decode(), [genuine.secret])
    return {
        # One character of the body changed, the headers as sent.
        "tampered body": replace(genuine, body=genuine.body.replace(b"marche", b"marchE")),
        # The signature of another event replayed with this one's id.
        "other webhook-id": replace(genuine, webhook_id=genuine.webhook_id + "x"),
        # A receiver holding another secret must not accept it.
        "wrong secret": replace(genuine, secret=new_secret()),
        # Genuinely signed, but 6 minutes ago: a replay outside the 5-minute window.
        "stale timestamp": replace(
            genuine,
            timestamp=stale["webhook-timestamp"],
            signature=stale["webhook-signature"],
        ),
        # No v1 signature at all.
        "no signature": replace(genuine, signature="v1,"),
    }


@pytest.mark.parametrize("example", EXAMPLES_TABLE, ids=lambda e: e.language)
async def test_example_accepts_a_genuine_delivery_and_rejects_forgeries(
    example: Example,
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    make_channel: ChannelFactory,
    sink: Sink,
    tmp_path: Path,
) -> None:
    if shutil.which(example.tool) is None and example.tool != "python3":
        service_missing(
            example.tool, f"{example.tool} is not on PATH (apt-get install {example.package})"
        )
    channel = await make_channel(
        "simulator", webhook_secret=SIM_SECRET, config={"phone_number": SIM_NUMBER}
    )
    genuine, rotated, old_secret = await real_deliveries(hub, client, api_headers, sink, channel.id)
    command = example.command(tmp_path)

    result = verify(command, genuine)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() == b"ok"
    for case, delivery in forged(genuine).items():
        result = verify(command, delivery)
        assert result.returncode == 1, f"{case}: {result.stdout!r} {result.stderr!r}"
        assert b"rejected" in result.stderr, case

    # During a rotation the header holds two signatures: either secret verifies.
    assert verify(command, rotated).returncode == 0
    assert verify(command, replace(rotated, secret=old_secret)).returncode == 0
    assert verify(command, replace(rotated, body=rotated.body + b" ")).returncode == 1
