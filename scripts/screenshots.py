"""Take the README's screenshots of the UI (``docs/img/*.png``).

A real ``smshub serve`` on a throwaway SQLite database, Debian's Chromium, and the same
newcomer scenario the browser test runs, plus some traffic so the pages have something to
show (a few contacts, a failing forward, two webhook endpoints — one healthy, one down).

    .venv/bin/python scripts/screenshots.py            # writes docs/img/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import scenario
from tests.e2e.browser import chromium, missing_browser, running_hub
from tests.fakes.sink import Sink

FAILING_FLOW = {
    "name": "Orders to the CRM",
    "description": "ORDER <item> is forwarded to the shop's CRM.",
    "nodes": [
        {
            "id": "start",
            "type": "trigger.sms_received",
            "config": {"match": "first_word", "keywords": ["ORDER"]},
            "ui": {"x": 0, "y": 80},
        },
        {
            "id": "crm",
            "type": "http.request",
            "config": {"url": "{crm_url}", "method": "POST"},
            "ui": {"x": 300, "y": 80},
        },
        {
            "id": "thanks",
            "type": "sms.reply",
            "config": {"text": "Thanks, your order for {{ steps.start.output.rest }} is in!"},
            "ui": {"x": 600, "y": 20},
        },
    ],
    "edges": [
        {"from": "start", "to": "crm"},
        {"from": "crm", "port": "success", "to": "thanks"},
    ],
}


async def api(page: Any, method: str, url: str, body: Any = None) -> Any:
    """Call the JSON API as the signed-in browser (session cookie + CSRF header)."""
    result = await page.evaluate(
        "([m, u, b]) => window.smshub.api(m, u, b === null ? undefined : b)", [method, url, body]
    )
    if not result["ok"]:
        raise RuntimeError(f"{method} {url}: {result}")
    return result["data"]


async def add_tag_step(page: Any) -> None:
    """A third step for the pictures: tag the new subscriber."""
    canvas = page.locator("#drawflow")
    await page.locator("[data-node-type='contact.update']").drag_to(
        canvas, target_position={"x": 790, "y": 300}
    )
    reply = page.locator(".drawflow-node.cat-sms")
    contact = page.locator(".drawflow-node.cat-contact")
    await reply.locator(".output").first.drag_to(contact.locator(".input").first)
    await contact.click()
    await page.click("[data-panel] [data-add=add_tags]")
    await page.fill("[data-panel] [data-list-item='add_tags.0']", "subscriber")
    await page.locator(".drawflow-node.cat-sms").click()


async def shoot(page: Any, out: Path, name: str) -> None:
    await page.wait_for_timeout(400)
    await page.screenshot(path=str(out / f"{name}.png"))
    print(f"  {out / name}.png")


async def take(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with Sink() as crm_ok, Sink() as crm_down:
            crm_down.always(503)
            env = {
                "SMSHUB_ALLOW_PRIVATE_DESTINATIONS": "true",
                "SMSHUB_ALLOW_HTTP_DESTINATIONS": "true",
                "SMSHUB_DELIVERY_RETRY_SCHEDULE": "0",
            }
            async with (
                running_hub(work, **env) as server,
                chromium(work / "profile") as page,
            ):
                base = server.url
                await scenario.first_start(page, base)
                channel_id = await scenario.add_simulator_channel(page, base, "Shop phone")

                await scenario.new_blank_flow(page, base, "JOIN keyword")
                await scenario.build_join_flow(page)
                await add_tag_step(page)
                await scenario.publish(page)
                await page.click("[data-action=fit]")
                await page.evaluate("document.querySelector('[data-palette]').scrollTop = 0")
                await shoot(page, out, "flow-editor")
                await scenario.try_in_test_drawer(page, "join news")
                await shoot(page, out, "flow-test-run")

                failing = {**FAILING_FLOW}
                failing["nodes"] = [dict(n) for n in FAILING_FLOW["nodes"]]  # type: ignore[union-attr, arg-type]
                failing["nodes"][1]["config"] = {"url": crm_down.url, "method": "POST"}  # type: ignore[index]
                await api(page, "POST", "/api/v1/flows/import?publish=true", failing)

                await page.goto(base + "/outbound")
                for url, description in (
                    (crm_ok.url, "Leads to the CRM"),
                    (crm_down.url, "Old billing system"),
                ):
                    await page.fill("#f-url", url)
                    await page.fill("#f-description", description)
                    await page.click("form[action='/outbound'] button[type=submit]")
                    await page.wait_for_url("**/outbound/ep_*")
                    await page.goto(base + "/outbound")

                for sender, text in (
                    ("+15550101001", "JOIN"),
                    ("+15550101002", "join vip"),
                    ("+15550101003", "ORDER 2 pizzas"),
                    ("+15550101004", "Hi, are you open on Sunday?"),
                    ("+15550101002", "STOP"),
                ):
                    await scenario.simulate_inbound(page, base, sender, text)
                await scenario.simulate_inbound(page, base, "+15550009999", "join")
                await scenario.wait_for_reply(page, "Welcome to the list, +15550009999!")
                await scenario.send_from_thread(page, "Glad to have you! See you on Sunday.")
                await page.wait_for_timeout(2500)  # the simulator reports delivery
                await shoot(page, out, "conversation")

                await page.goto(base + "/")
                await shoot(page, out, "dashboard")
                await page.goto(base + "/runs")
                await page.click("tr[data-href^='/runs/run_']:has-text('failed')")
                await page.wait_for_selector(".drawflow-node.ran-failed")
                await shoot(page, out, "run")
                await page.goto(base + "/outbound")
                await shoot(page, out, "webhooks")
                await page.goto(base + f"/channels/{channel_id}")
                await shoot(page, out, "channel")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs/img"))
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    asyncio.run(take(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
