"""The editor knows every node type, in Chromium: each is in the palette, its form is built
from its schema when it sits on the canvas, and a random split grows one output per branch
on the canvas and runs in the test drawer. Bounded like test_browser.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flows import node_types_catalog
from tests.conftest import service_missing
from tests.e2e import scenario
from tests.e2e.browser import chromium, missing_browser, running_hub

pytestmark = pytest.mark.browser

TEST_BUDGET_S = 120


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    reason = missing_browser()
    if reason:
        service_missing("Chromium", reason)


async def test_every_node_type_is_in_the_palette_and_gets_its_form(tmp_path: Path) -> None:
    types = [entry["type"] for entry in node_types_catalog()]
    assert {"trigger.schedule", "trigger.run_failed", "logic.split_random", "flow.start"} <= set(
        types
    )

    async def run() -> None:
        async with running_hub(tmp_path) as server, chromium(tmp_path / "profile") as page:
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await scenario.first_start(page, server.url)
            await scenario.new_blank_flow(page, server.url, "Every node")
            canvas = page.locator("#drawflow")
            for i, node_type in enumerate(types):
                entry = page.locator(f"[data-node-type='{node_type}']")
                await (await scenario.expect(entry)).to_have_count(1)
                # Four to a row, clear of the side panel the previous click opened.
                await entry.drag_to(
                    canvas, target_position={"x": 80 + 150 * (i % 4), "y": 60 + 100 * (i // 4)}
                )
                await (await scenario.expect(page.locator(".drawflow-node"))).to_have_count(i + 1)
                await page.locator(".drawflow-node").nth(i).click()
                # The panel shows the type's form: one field per property of its schema.
                spec = next(e for e in node_types_catalog() if e["type"] == node_type)
                for name in spec["config_schema"].get("properties", {}):
                    field = page.locator(f"[data-panel] [data-field='{name}']")
                    await (await scenario.expect(field.first)).to_be_attached()
            assert errors == [], errors

    await asyncio.wait_for(run(), TEST_BUDGET_S)


async def test_a_random_split_grows_a_port_per_branch_and_runs_in_the_test_drawer(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        async with running_hub(tmp_path) as server, chromium(tmp_path / "profile") as page:
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await scenario.first_start(page, server.url)
            await scenario.new_blank_flow(page, server.url, "A/B test")
            canvas = page.locator("#drawflow")
            await page.locator("[data-node-type='trigger.sms_received']").drag_to(
                canvas, target_position={"x": 120, "y": 250}
            )
            await page.locator("[data-node-type='logic.split_random']").drag_to(
                canvas, target_position={"x": 420, "y": 250}
            )
            await page.locator("[data-node-type='sms.reply']").drag_to(
                canvas, target_position={"x": 760, "y": 150}
            )
            await page.locator("[data-node-type='sms.reply']").drag_to(
                canvas, target_position={"x": 760, "y": 380}
            )
            nodes = page.locator(".drawflow-node")
            trigger, split, reply_a, reply_b = (nodes.nth(i) for i in range(4))
            await trigger.click()
            await page.click("[data-panel] [data-add=keywords]")
            await page.fill("[data-panel] [data-list-item='keywords.0']", "PROMO")
            await split.click()
            branches = page.locator("[data-panel] [data-field='branches']")
            for name, percent in (("a", "50"), ("b", "50")):
                await branches.locator("button", has_text="Add branch").click()
                item = branches.locator(".subform").last
                await item.locator("[data-input=name]").fill(name)
                await item.locator("[data-input=percent]").fill(percent)
            # One output per branch on the canvas (the split cannot fail: no error port).
            await (await scenario.expect(split.locator(".output"))).to_have_count(2)
            await split.locator(".output").nth(0).drag_to(reply_a.locator(".input").first)
            await split.locator(".output").nth(1).drag_to(reply_b.locator(".input").first)
            await trigger.locator(".output").first.drag_to(split.locator(".input").first)
            await (await scenario.expect(page.locator(".connection"))).to_have_count(3)
            for reply, text in ((reply_a, "Offer A"), (reply_b, "Offer B")):
                await reply.click()
                await page.fill("[data-panel] [data-input=text]", text)
            await (await scenario.expect(page.locator("[data-problem-count]"))).to_have_text(
                "Ready to publish"
            )
            await scenario.try_in_test_drawer(page, "promo")
            sms = page.locator("[data-test-sms]")
            await (await scenario.expect(sms)).to_contain_text("Offer")
            assert errors == [], errors

    await asyncio.wait_for(run(), TEST_BUDGET_S)
