"""The browser, for real: Debian's Chromium drives a ``smshub serve`` child process.

A newcomer, on a hub started as ``make run`` starts it (SQLite, a simulator channel and
the example JOIN flow), signs up on first start, pauses the example, builds and publishes
their own JOIN keyword auto-reply from the palette, simulates an inbound "join" from a
new number on the conversation page and sees their flow's reply arrive, delivered.
Bounded: every action has a 15 s limit and each test 100 s; browser and server stop
themselves.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_missing
from tests.e2e import scenario
from tests.e2e.browser import chromium, missing_browser, running_hub

pytestmark = pytest.mark.browser

#: Seconds one browser test may take in all.
TEST_BUDGET_S = 100
#: Where to keep screenshots of the run (for a look after a failure); unset = tmp dir.
SHOTS = os.environ.get("SMSHUB_E2E_SHOTS")


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    reason = missing_browser()
    if reason:
        service_missing("Chromium", reason)


async def _bounded(coro: Any) -> None:
    await asyncio.wait_for(coro, TEST_BUDGET_S)


async def test_newcomer_builds_a_join_flow_and_sees_it_answer(tmp_path: Path) -> None:
    shots = Path(SHOTS) if SHOTS else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        async with (
            running_hub(tmp_path, SMSHUB_BOOTSTRAP_SIMULATOR="true") as server,
            chromium(tmp_path / "profile") as page,
        ):
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            base = server.url
            try:
                await scenario.first_start(page, base)
                await scenario.sign_out_and_in(page, base)
                await scenario.pause_flow(page, base, "JOIN keyword")
                await scenario.new_blank_flow(page, base, "My JOIN reply")
                await scenario.build_join_flow(page)
                await scenario.try_in_test_drawer(page, "join")
                sms = page.locator("[data-test-sms]")
                await (await scenario.expect(sms)).to_contain_text("Welcome to the list, +1555")
                await page.click("[data-action=close-test]")
                await scenario.publish(page)
                await scenario.simulate_inbound(page, base, "+15550009999", "join")
                await scenario.wait_for_reply(page, "Welcome to the list, +15550009999!")
                # Only the newcomer's flow answered: the paused example stayed silent.
                await (await scenario.expect(page.locator(".bubble-row.out"))).to_have_count(1)
                await (await scenario.expect(page.locator(".bubble-row.in .bubble"))).to_have_text(
                    "join"
                )
                # And a human answers from the same thread.
                await scenario.send_from_thread(page, "Glad to have you!")
                await (await scenario.expect(page.locator(".bubble-row.out"))).to_have_count(2)
                await page.goto(base + "/runs")
                first = page.locator("tr[data-href^='/runs/run_']").first
                await (await scenario.expect(first)).to_contain_text("completed")
                await first.click()
                await page.wait_for_url(re.compile(r".*/runs/run_\w+$"))
                await (await scenario.expect(page.locator(".drawflow-node.ran"))).to_have_count(2)
                assert errors == [], errors
            finally:
                await page.screenshot(path=str(shots / "last.png"))

    await _bounded(run())


async def test_bad_input_in_the_browser_shows_next_to_the_field(tmp_path: Path) -> None:
    async def run() -> None:
        async with (
            running_hub(tmp_path) as server,
            chromium(tmp_path / "profile") as page,
        ):
            base = server.url
            await page.goto(base + "/setup")
            await page.fill("#f-email", "not an address")
            await page.fill("#f-password", "short")
            await page.fill("#f-password2", "short")
            await page.click("button[type=submit]")
            error = page.locator("[data-error-for=email]")
            await (await scenario.expect(error)).to_contain_text("e-mail address")
            await scenario.first_start(page, base)
            channel_id = await scenario.add_simulator_channel(page, base)
            assert await page.locator("[data-qr] svg").count() == 1
            await page.goto(base + f"/channels/{channel_id}")
            await page.fill("#simulate #f-from", "12")
            await page.fill("#simulate #f-text", "hello")
            await page.click("#simulate button[type=submit]")
            await (await scenario.expect(page.locator("[data-error-for=from]"))).to_be_visible()
            await page.goto(base + "/channels/new/twilio")
            await page.fill("#f-name", "Twilio")
            await page.fill("[name='cfg.account_sid']", "nope")
            await page.click("button[type=submit]")
            sid_error = page.locator("[data-error-for='cfg.account_sid']")
            await (await scenario.expect(sid_error)).to_be_visible()
            await (
                await scenario.expect(page.locator("[data-error-for='cfg.auth_token']"))
            ).to_contain_text("required")

    await _bounded(run())


async def test_saving_in_the_editor_keeps_the_flows_settings(tmp_path: Path) -> None:
    """The editor has no form for a flow's ``settings`` (what its run history keeps): a
    save from the editor must hand them back unchanged, not drop them."""
    import sys

    import httpx

    async def run() -> None:
        async with (
            running_hub(tmp_path) as server,
            chromium(tmp_path / "profile") as page,
        ):
            created = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "hub.cli", "apikey", "create", "--name", "e2e"),
                env=server.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await asyncio.wait_for(created.communicate(), 60)
            assert created.returncode == 0
            key = out.decode().strip()
            auth = {"Authorization": f"Bearer {key}"}
            document = {
                "name": "Private survey",
                "nodes": [
                    {"id": "t", "type": "trigger.sms_received", "config": {"keywords": ["ASK"]}},
                    {"id": "r", "type": "sms.reply", "config": {"text": "Thanks"}},
                ],
                "edges": [{"from": "t", "to": "r"}],
                "settings": {"store_step_data": False, "redact": ["body"]},
            }
            async with httpx.AsyncClient(base_url=server.url, headers=auth) as api:
                resp = await api.post("/api/v1/flows/import", json=document)
                assert resp.status_code == 201, resp.text
                flow_id = resp.json()["id"]
                await scenario.first_start(page, server.url)
                await page.goto(f"{server.url}/flows/{flow_id}")
                await page.wait_for_selector(".drawflow-node")
                await page.click("[data-action=save]")
                await (await scenario.expect(page.locator("[data-save-state]"))).to_have_text(
                    "Draft saved"
                )
                draft = (await api.get(f"/api/v1/flows/{flow_id}")).json()["draft"]
            assert draft["settings"] == {"store_step_data": False, "redact": ["body"]}

    await _bounded(run())
