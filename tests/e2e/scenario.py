"""A newcomer's first session, step by step, as a user does it in the browser.

Shared by ``test_browser.py`` (which asserts on every step) and ``scripts/screenshots.py``.
"""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.helpers import ADMIN_EMAIL, ADMIN_PASSWORD

JOIN_REPLY = "Welcome to the list, {{ trigger.data.from }}! Reply STOP to opt out."
THREAD_URL = re.compile(r".*/conversations/ct_\w+/ch_\w+$")


async def expect(locator: Any) -> Any:
    """Playwright's ``expect`` (imported late: the package may be missing)."""
    from playwright.async_api import expect as _expect

    return _expect(locator)


async def first_start(page: Any, base: str) -> None:
    """Open the hub: every page leads to setup; create the admin, land on the dashboard."""
    await page.goto(base + "/flows")
    await page.wait_for_url(base + "/setup")
    await page.fill("#f-email", ADMIN_EMAIL)
    await page.fill("#f-password", ADMIN_PASSWORD)
    await page.fill("#f-password2", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")


async def sign_out_and_in(page: Any, base: str) -> None:
    """Sign out from the sidebar, then sign in again with the form."""
    await page.click("[data-sign-out]")
    await page.wait_for_url(base + "/login")
    await page.fill("#f-email", ADMIN_EMAIL)
    await page.fill("#f-password", "not my password")
    await page.click("button[type=submit]")
    await (await expect(page.locator("[data-error-for=password]"))).to_contain_text("wrong")
    await page.fill("#f-password", ADMIN_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base + "/")


async def pause_flow(page: Any, base: str, name: str) -> None:
    """Flows → Pause on a live flow (the example JOIN flow of a fresh install)."""
    await page.goto(base + "/flows")
    row = page.locator("tr", has_text=name)
    await row.locator("button", has_text="Pause").click()
    await (await expect(page.locator("tr", has_text=name))).to_contain_text("paused")


async def add_simulator_channel(page: Any, base: str, name: str = "Simulator") -> str:
    """Channels → Add → Simulator: the generated form, then the setup page. Returns its id."""
    await page.goto(base + "/channels")
    await page.click("text=Add channel")
    await page.click("[data-connector=simulator]")
    await page.fill("#f-name", name)
    await page.fill("[name='cfg.delivery_delay_s']", "0.5")
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/channels/ch_\w+\?created=1$"))
    await (await expect(page.locator("#url-default"))).to_have_value(re.compile("/webhooks/ch_"))
    return str(page.url.split("/channels/")[1].split("?")[0])


async def new_blank_flow(page: Any, base: str, name: str) -> str:
    """Flows → New flow (blank): opens the editor. Returns the flow id."""
    await page.goto(base + "/flows")
    await page.fill("#f-name", name)
    await page.click("form[action='/flows'] button[type=submit]")
    await page.wait_for_url(re.compile(r".*/flows/flw_\w+$"))
    await page.wait_for_selector("[data-node-type='trigger.sms_received']")
    return str(page.url.rsplit("/", 1)[1])


async def build_join_flow(page: Any) -> None:
    """Drag the trigger and the reply from the palette, connect them, fill their config."""
    canvas = page.locator("#drawflow")
    await page.locator("[data-node-type='trigger.sms_received']").drag_to(
        canvas, target_position={"x": 150, "y": 300}
    )
    await page.locator("[data-node-type='sms.reply']").drag_to(
        canvas, target_position={"x": 470, "y": 300}
    )
    await (await expect(page.locator(".drawflow-node"))).to_have_count(2)
    trigger = page.locator(".drawflow-node.cat-trigger")
    reply = page.locator(".drawflow-node.cat-sms")
    await trigger.locator(".output").first.drag_to(reply.locator(".input").first)
    await (await expect(page.locator(".connection"))).to_have_count(1)
    await trigger.click()
    await page.click("[data-panel] [data-add=keywords]")
    await page.fill("[data-panel] [data-list-item='keywords.0']", "JOIN")
    await reply.click()
    await page.fill("[data-panel] [data-input=text]", JOIN_REPLY)
    await (await expect(page.locator("[data-problem-count]"))).to_have_text("Ready to publish")


async def try_in_test_drawer(page: Any, text: str = "join") -> None:
    """Open the test drawer and run the draft on an inbound SMS (nothing is sent)."""
    await page.click("[data-action=test]")
    await page.fill("#t-text", text)
    await page.click("[data-action=run-test]")
    await (await expect(page.locator("[data-test-status]"))).to_have_text("completed")


async def publish(page: Any) -> None:
    """Save and publish; the status pill shows the live version."""
    await page.click("[data-action=publish]")
    await (await expect(page.locator("[data-status-pill]"))).to_contain_text("Live")


async def simulate_inbound(page: Any, base: str, sender: str, text: str) -> None:
    """Conversations → "Simulate an inbound SMS": lands on the new thread."""
    await page.goto(base + "/conversations")
    await page.fill("#simulate #f-from", sender)
    await page.fill("#simulate #f-text", text)
    await page.click("[data-action=simulate]")
    await page.wait_for_url(THREAD_URL)


async def wait_for_reply(page: Any, text: str) -> None:
    """The auto-reply appears in the thread (htmx polls), then its delivery ticks."""
    bubble = page.locator(".bubble-row.out .bubble", has_text=text)
    await (await expect(bubble.first)).to_be_visible(timeout=20_000)
    ticks = page.locator(".bubble-row.out .ticks.delivered")
    await (await expect(ticks.first)).to_be_visible(timeout=20_000)


async def send_from_thread(page: Any, text: str) -> None:
    """Type in the composer and press Enter (htmx posts it; the thread refreshes)."""
    await page.fill("#composer textarea", text)
    await page.press("#composer textarea", "Enter")
    bubble = page.locator(".bubble-row.out .bubble", has_text=text)
    await (await expect(bubble.first)).to_be_visible(timeout=20_000)
