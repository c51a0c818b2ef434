"""Helpers shared by the UI's integration tests and the browser tests: signing in over
plain HTTP, reading tokens out of pages, and snapshots of the whole database."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from hub.context import Hub
from hub.models import metadata

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"

#: Columns that reading a page may touch without anything "changing" (bookkeeping).
VOLATILE = {("user_sessions", "last_seen_at"), ("api_keys", "last_used_at")}


def form_token(html: str) -> str:
    """The first ``_csrf`` hidden field of a page."""
    found = re.search(r'name="_csrf" value="([^"]*)"', html)
    assert found, "no _csrf field on the page"
    return found.group(1)


def page_csrf(html: str) -> str:
    """The session's CSRF token from a signed-in page's <meta>."""
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert found and found.group(1), "no CSRF token on the page"
    return found.group(1)


async def set_up_admin(
    client: httpx.AsyncClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> str:
    """First start: create the admin through /setup; the client keeps the session cookie.
    Returns the session's CSRF token."""
    page = await client.get("/setup")
    assert page.status_code == 200, page.text
    resp = await client.post(
        "/setup",
        data={
            "_csrf": form_token(page.text),
            "email": email,
            "password": password,
            "password2": password,
        },
    )
    assert resp.status_code == 303, resp.text
    home = await client.get("/")
    assert home.status_code == 200
    return page_csrf(home.text)


async def sign_in(
    client: httpx.AsyncClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> httpx.Response:
    """Post the sign-in form (with its double-submit token)."""
    page = await client.get("/login")
    return await client.post(
        "/login", data={"_csrf": form_token(page.text), "email": email, "password": password}
    )


async def db_snapshot(hub: Hub) -> str:
    """A digest of every row of every table (bookkeeping columns left out)."""
    digest = hashlib.sha256()
    async with hub.db.read() as session:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
            rows = await session.execute(
                sa.select(*columns).order_by(*[c for c in table.primary_key.columns])
            )
            for row in rows.all():
                digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


def error_next_to(html: str, field: str) -> str:
    """The message shown next to a form field (``data-error-for``), or ''."""
    found = re.search(rf'data-error-for="{re.escape(field)}">([^<]*)<', html)
    return found.group(1).strip() if found else ""


def text_of(html: str) -> str:
    """The page's text, tags stripped (for loose assertions)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def unescape(value: Any) -> str:
    """HTML entities back to text."""
    import html

    return html.unescape(str(value))


@dataclass
class Web:
    """A signed-in browser stand-in: the client keeps the cookie; ``csrf`` is the token."""

    client: httpx.AsyncClient
    csrf: str

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def post(self, url: str, data: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.post(url, data={"_csrf": self.csrf, **(data or {})}, **kw)

    async def post_json(self, url: str, body: Any) -> httpx.Response:
        return await self.client.post(url, json=body, headers={"X-CSRF-Token": self.csrf})
