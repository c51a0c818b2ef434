"""Endpoints in MySMSGate's webhook format: receivers written for MySMSGate — the Flask and
Express handlers of its integration guide, run for real — get and parse our SMS events
unchanged, signature included."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.context import Hub
from hub.delivery import mysmsgate_format
from tests import node_packages
from tests.conftest import FIXTURES, ChannelFactory, drain, free_port
from tests.integration.test_sending import ALICE, SECRET, SIM_NUMBER, get_message, post_sim

RECEIVERS = FIXTURES / "mysmsgate_receivers"
#: What a receiver is given as its secret: the endpoint's, as the hub shows it.
ENDPOINT_SECRET = "whsec_" + "bXlzbXNnYXRlLWZvcm1hdC10ZXN0LWtleS0xMjM0"


@pytest.fixture
async def sim(make_channel: ChannelFactory) -> str:
    channel = await make_channel(
        "simulator", webhook_secret=SECRET, config={"phone_number": SIM_NUMBER}
    )
    return str(channel.id)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"{what} exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}")


@pytest.fixture(scope="session")
def express_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Express receiver with its locked dependencies installed (npm ci)."""
    target = tmp_path_factory.mktemp("express")
    for name in ("express_app.js", "package.json", "package-lock.json"):
        shutil.copy(RECEIVERS / name, target / name)
    return node_packages.npm_ci(target, "runs the Express receiver")


def _receiver(kind: str, express: Path | None, received: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "WEBHOOK_SECRET": ENDPOINT_SECRET, "RECEIVED_FILE": str(received)}
    if kind == "flask":
        command = [sys.executable, str(RECEIVERS / "flask_app.py"), str(port)]
    else:
        assert express is not None
        command = ["node", str(express / "express_app.js"), str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(port, proc, kind)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # and closes its stderr pipe


@pytest.fixture(params=["flask", "express"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running MySMSGate-style receiver: its base URL and the file of what it parsed."""
    express = request.getfixturevalue("express_dir") if request.param == "express" else None
    received = tmp_path / "received.jsonl"
    received.touch()
    for url in _receiver(request.param, express, received):
        yield url, received


def _lines(received: Path) -> list[str]:
    return received.read_text().splitlines()


async def _records(received: Path, count: int) -> list[dict[str, Any]]:
    for _ in range(600):  # deliveries go out through the queue: allow a busy machine
        lines = _lines(received)
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        await asyncio.sleep(0.05)
    raise AssertionError(f"receiver parsed {_lines(received)!r}, expected {count} records")


async def test_mysmsgate_handlers_receive_and_parse_our_events_unchanged(
    hub: Hub,
    client: httpx.AsyncClient,
    api_headers: dict[str, str],
    sim: str,
    receiver: tuple[str, Path],
) -> None:
    base, received = receiver
    for path, events in (
        ("/sms/incoming", ["sms.received"]),
        ("/sms/status", ["sms.sent", "sms.delivered", "sms.failed"]),
    ):
        resp = await client.post(
            "/api/v1/endpoints",
            json={
                "url": base + path,
                "event_types": events,
                "format": "mysmsgate",
                "secret": ENDPOINT_SECRET,
            },
            headers=api_headers,
        )
        assert resp.status_code == 201, resp.text
        assert (resp.json()["format"], resp.json()["preset"]) == ("mysmsgate", "mysmsgate")
    resp = await post_sim(
        client,
        sim,
        "sms.received",
        event_id="in-1",
        text="Hello, how are you?",
        device_id="phone-a",
        sim_slot=1,
    )
    assert resp.status_code == 200, resp.text
    await drain(hub)
    sent = await client.post(
        "/api/v1/send", json={"to": ALICE, "message": "Fine, thanks"}, headers=api_headers
    )
    sms_id = sent.json()["sms_id"]
    for _ in range(300):  # the simulator reports delivery a moment after the send
        await drain(hub)
        if (await get_message(client, api_headers, sms_id))["status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    assert (await get_message(client, api_headers, sms_id))["status"] == "delivered"
    records = await _records(received, 3)
    incoming = [r for r in records if r["kind"] == "incoming"]
    assert incoming == [
        {
            "kind": "incoming",
            "from": ALICE,
            "to": SIM_NUMBER,
            "message": "Hello, how are you?",
            "device_id": "phone-a",
            "sim_slot": 1,
            "timestamp": incoming[0]["timestamp"],
        }
    ]
    assert isinstance(incoming[0]["timestamp"], int) and incoming[0]["timestamp"] > 1.7e9
    statuses = [
        (r["message_id"], r["status"], r["refunded"]) for r in records if r["kind"] == "status"
    ]
    assert statuses == [(sms_id, "sent", False), (sms_id, "delivered", False)]
    assert all(
        r["to"] == ALICE and r["device_id"] == "phone-a" for r in records if r["kind"] == "status"
    )


async def test_a_tampered_body_fails_the_handlers_signature_check(
    receiver: tuple[str, Path],
) -> None:
    base, received = receiver
    body = json.dumps(
        {
            "from": ALICE,
            "to": SIM_NUMBER,
            "message": "hi",
            "device_id": "d",
            "sim_slot": 0,
            "timestamp": 1,
        }
    )
    good = mysmsgate_format.signature_header(ENDPOINT_SECRET, body)
    async with httpx.AsyncClient() as http:
        ok = await http.post(
            base + "/sms/incoming",
            content=body,
            headers={**good, "content-type": "application/json"},
        )
        bad = await http.post(
            base + "/sms/incoming",
            content=body.replace("hi", "ho"),
            headers={**good, "content-type": "application/json"},
        )
    assert (ok.status_code, bad.status_code) == (200, 401)
    assert len(_lines(received)) == 1


def test_our_mysmsgate_bodies_are_what_the_mysmsgate_connector_parses() -> None:
    """The delivery-report shape has exactly the fields of MySMSGate's own (its fixture)."""
    event = {
        "id": "evt_1",
        "type": "sms.failed",
        "timestamp": "2026-12-01T10:00:00+00:00",
        "data": {
            "message_id": "msg_1",
            "to": ALICE,
            "status": "failed",
            "error": "RECIPIENT_UNREACHABLE",
            "sim_slot": 0,
            "device": {"id": "dev_1", "gateway_id": "phone-a", "name": None},
            "refunded": True,
        },
    }
    body = json.dumps(mysmsgate_format.shape(event))
    shaped = json.loads(body)
    assert shaped == {
        "message_id": "msg_1",
        "to": ALICE,
        "status": "failed",
        "status_text": "RECIPIENT_UNREACHABLE",
        "device_id": "phone-a",
        "sim_slot": 0,
        "refunded": True,
        "timestamp": 1796119200,
    }
    fixture = json.loads((FIXTURES / "mysmsgate" / "delivery_failed.json").read_text())
    assert set(shaped) == set(json.loads(fixture["request"]["body"]))
    digest = hmac.new(ENDPOINT_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    assert mysmsgate_format.signature_header(ENDPOINT_SECRET, body) == {"X-Signature": digest}


async def test_format_switches_on_and_off_and_refuses_a_clash_with_the_preset(
    hub: Hub, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    url = "http://127.0.0.1:9/sms/incoming"
    made = await client.post(
        "/api/v1/endpoints",
        json={"url": url, "event_types": ["sms.received"], "format": "mysmsgate"},
        headers=api_headers,
    )
    assert made.status_code == 201, made.text
    endpoint_id = made.json()["id"]
    back = await client.patch(
        f"/api/v1/endpoints/{endpoint_id}", json={"format": "standard"}, headers=api_headers
    )
    assert (back.json()["format"], back.json()["preset"]) == ("standard", "generic")
    again = await client.patch(
        f"/api/v1/endpoints/{endpoint_id}", json={"format": "mysmsgate"}, headers=api_headers
    )
    assert (again.json()["format"], again.json()["preset"]) == ("mysmsgate", "mysmsgate")
    clash = await client.patch(
        f"/api/v1/endpoints/{endpoint_id}",
        json={"format": "mysmsgate", "preset": "zapier"},
        headers=api_headers,
    )
    assert clash.status_code == 422 and "format mysmsgate" in clash.text
    refused = await client.post(
        "/api/v1/endpoints",
        json={
            "url": url,
            "event_types": ["sms.received"],
            "format": "standard",
            "preset": "mysmsgate",
        },
        headers=api_headers,
    )
    assert refused.status_code == 422
