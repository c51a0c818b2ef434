"""Debian's Chromium under Playwright, and a real ``smshub serve`` to point it at.

Used by the browser tests and by ``scripts/screenshots.py``. Everything here stops itself:
the browser closes and the server child process is killed when the context exits.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.fault.server import Server

CHROMIUM = os.environ.get("SMSHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
#: Milliseconds any one browser action or expectation may take.
ACTION_TIMEOUT_MS = 15_000


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@asynccontextmanager
async def chromium(profile_dir: Path, *, scale: float = 1.0) -> AsyncIterator[Any]:
    """A fresh Chromium profile; yields its first page (closed on exit)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,  # type: ignore[arg-type]
            device_scale_factor=scale,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            yield page
        finally:
            await context.close()


@asynccontextmanager
async def running_hub(tmp_path: Path, **env: str) -> AsyncIterator[Server]:
    """``smshub serve`` on SQLite in a child process (killed on exit)."""
    server = Server(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'smshub.db'}", **env)
    try:
        yield await server.start()
    finally:
        server.kill()
