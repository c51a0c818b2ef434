"""The browser, for the new triggers: a schedule dragged from the palette gets its form from
the schema (the nested ``every`` interval as fields), shows its problem until it has a
schedule, and the test drawer starts with its next tick."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_missing
from tests.e2e import scenario
from tests.e2e.browser import chromium, missing_browser, running_hub

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    reason = missing_browser()
    if reason:
        service_missing("Chromium", reason)


async def build_schedule_flow(page: Any) -> None:
    """trigger.schedule → sms.send, every 5 minutes, from the palette."""
    canvas = page.locator("#drawflow")
    await page.locator("[data-node-type='trigger.schedule']").drag_to(
        canvas, target_position={"x": 150, "y": 300}
    )
    await page.locator("[data-node-type='sms.send']").drag_to(
        canvas, target_position={"x": 470, "y": 300}
    )
    trigger = page.locator(".drawflow-node.cat-trigger")
    send = page.locator(".drawflow-node.cat-sms")
    await trigger.locator(".output").first.drag_to(send.locator(".input").first)
    await (await scenario.expect(page.locator(".connection"))).to_have_count(1)
    await send.click()
    await page.fill("[data-panel] [data-input=to]", "+15550009999")
    await page.fill("[data-panel] [data-input=text]", "Tick {{ trigger.data.scheduled_at }}")
    await trigger.click()
    # Neither cron nor every yet: the node has a problem.
    count = page.locator("[data-problem-count]")
    await (await scenario.expect(count)).not_to_have_text("Ready to publish")
    await page.fill("[data-panel] [data-field=every] [data-input=minutes]", "5")
    await (await scenario.expect(count)).to_have_text("Ready to publish")
    await (await scenario.expect(trigger)).to_contain_text("every 5 minutes")


async def test_a_schedule_from_the_palette_is_test_run_on_its_next_tick(tmp_path: Path) -> None:
    async def run() -> None:
        async with running_hub(tmp_path) as server, chromium(tmp_path / "profile") as page:
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await scenario.first_start(page, server.url)
            await scenario.new_blank_flow(page, server.url, "Every five minutes")
            await build_schedule_flow(page)
            await page.click("[data-action=test]")
            mode = page.locator("#t-mode")
            await (await scenario.expect(mode)).to_have_value("schedule")
            await page.click("[data-action=run-test]")
            status = page.locator("[data-test-status]")
            await (await scenario.expect(status)).to_have_text("completed")
            sms = page.locator("[data-test-sms]")
            await (await scenario.expect(sms)).to_contain_text("Tick 20")
            assert errors == [], errors

    await asyncio.wait_for(run(), 100)
