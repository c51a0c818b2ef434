"""The secret-key guard: a process whose key does not fit the database refuses to start,
no key file is generated for a database that holds secrets, and a channel secret that
cannot be decrypted answers a gateway 503, not 500."""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from connectors.simulator import event_body, sign_request
from hub.app import build_hub, create_app
from hub.context import Hub
from hub.models import HubMeta
from hub.services.channels import create_channel
from hub.services.meta import KEY_CHECK, SecretKeyError, confirm_secret_key, stored_key_check
from tests.conftest import make_settings
from tests.fault.server import Server

KEY_A = "the-key-of-the-first-process"
SECRET = "channel-webhook-secret"


async def _first_use(tmp_path: Path, database_url: str, key: str = KEY_A) -> str:
    """A process with ``key`` starts on the database and stores a channel; its id."""
    hub = build_hub(make_settings(tmp_path / "first", database_url, secret_key=key))
    try:
        await confirm_secret_key(hub)
        channel = await create_channel(
            hub, connector="simulator", name="phone", config={}, webhook_secret=SECRET
        )
        return channel.id
    finally:
        await hub.close()


def _refused(server: Server) -> str:
    """Run a server that must refuse to start; its output."""
    server.log.parent.mkdir(parents=True, exist_ok=True)
    server.spawn()
    assert server.proc is not None
    try:
        code = server.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the server started:\n{server.log.read_text()}") from None
    finally:
        server.kill()
    output = server.log.read_text()
    assert code != 0, output
    assert "Traceback" not in output
    return output


async def test_a_server_with_another_key_or_none_refuses_to_start(
    tmp_path: Path, database_url: str
) -> None:
    await _first_use(tmp_path, database_url)
    other = _refused(Server(tmp_path / "other", database_url, SMSHUB_SECRET_KEY="another key"))
    [line] = [ln for ln in other.splitlines() if "refusing to start" in ln]
    assert "SMSHUB_SECRET_KEY does not match this database" in line
    # Another folder and no key at all: no key is generated, the folder is named.
    fresh = tmp_path / "fresh"
    none = _refused(Server(fresh, database_url, SMSHUB_SECRET_KEY=""))
    assert "SMSHUB_SECRET_KEY is not set" in none
    assert str((fresh / "var" / "secret.key").absolute()) in none
    assert not (fresh / "var" / "secret.key").exists()
    # The key the database knows starts fine.
    server = Server(tmp_path / "same", database_url, SMSHUB_SECRET_KEY=KEY_A)
    server.log.parent.mkdir(parents=True, exist_ok=True)
    try:
        await server.start()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/readyz")).status_code == 200
    finally:
        server.kill()


async def test_the_first_start_records_the_key_or_generates_one(
    tmp_path: Path, database_url: str
) -> None:
    # No key anywhere and a database without secrets: a key file is generated and recorded.
    settings = make_settings(tmp_path / "one", database_url, secret_key="")
    hub = build_hub(settings)
    try:
        assert await stored_key_check(hub) is None
        await confirm_secret_key(hub)
        assert (settings.var_dir / "secret.key").exists()
        assert await stored_key_check(hub) == hub.box.check_value()
    finally:
        await hub.close()
    # A restart in the same folder reads that file and fits.
    again = build_hub(settings)
    try:
        await confirm_secret_key(again)
        assert again.box.check_value() == hub.box.check_value()
    finally:
        await again.close()


async def test_a_database_from_before_the_check_is_tested_against_its_secrets(
    tmp_path: Path, database_url: str
) -> None:
    await _first_use(tmp_path, database_url)

    async def confirm(key: str, folder: str) -> Hub:
        hub = build_hub(make_settings(tmp_path / folder, database_url, secret_key=key))
        try:
            # As a database migrated from before the check value existed.
            async with hub.db.write() as session:
                await session.execute(sa.delete(HubMeta))
            await confirm_secret_key(hub)
            return hub
        finally:
            await hub.close()

    with pytest.raises(SecretKeyError, match="SMSHUB_SECRET_KEY does not match"):
        await confirm("another key", "b")
    with pytest.raises(SecretKeyError, match="SMSHUB_SECRET_KEY is not set"):
        await confirm("", "c")
    assert not (tmp_path / "c" / "var" / "secret.key").exists()
    hub = await confirm(KEY_A, "d")
    check = build_hub(make_settings(tmp_path / "d", database_url, secret_key=KEY_A))
    try:
        async with check.db.read() as session:
            row = await session.get(HubMeta, KEY_CHECK)
        assert row is not None and row.value == hub.box.check_value()
    finally:
        await check.close()


async def test_a_webhook_whose_channel_secret_cannot_be_decrypted_is_a_503(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    channel_id = await _first_use(tmp_path, database_url)
    # A process that skipped the guard (or whose key changed under it) on the same data.
    hub = build_hub(make_settings(tmp_path / "wrong", database_url, secret_key="another key"))
    body = event_body(
        "sms.received", event_id="e1", from_number="+15550001111", to_number="", text="hi"
    )
    headers = {"content-type": "application/json", **sign_request(SECRET, body, datetime.now(UTC))}
    transport = httpx.ASGITransport(app=create_app(hub=hub, workers=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t.local") as client:
            with caplog.at_level(logging.ERROR):
                resp = await client.post(f"/webhooks/{channel_id}", content=body, headers=headers)
            ready = await client.get("/readyz")  # the process now says it is not fit
        assert ready.status_code == 503
        assert "SMSHUB_SECRET_KEY" in ready.json()["checks"]["secret_key"]
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "secret_key_mismatch"
        assert "SMSHUB_SECRET_KEY" in resp.json()["error"]["message"]
        [record] = [r for r in caplog.records if "cannot be decrypted" in r.getMessage()]
        assert "SMSHUB_SECRET_KEY" in record.getMessage() and record.exc_info is None
        assert hub.box.mismatch
    finally:
        await hub.close()
