"""Sign-in: first-start setup, login and logout, cookies, throttling, the API with a
browser session, and ``smshub user create``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import col

from hub.app import create_app
from hub.context import Hub
from hub.models import Message, User, UserSession, utcnow
from hub.services.users import create_user
from tests.e2e.helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    error_next_to,
    form_token,
    page_csrf,
    set_up_admin,
    sign_in,
)
from tests.helpers import count

PAGES = [
    "/",
    "/flows",
    "/runs",
    "/conversations",
    "/contacts",
    "/channels",
    "/channels/new",
    "/settings/api-keys",
]


@pytest.mark.parametrize("path", PAGES)
async def test_first_start_sends_every_page_to_setup(client: httpx.AsyncClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/setup"


async def test_login_page_sends_to_setup_until_an_account_exists(client: httpx.AsyncClient) -> None:
    resp = await client.get("/login")
    assert resp.status_code == 303 and resp.headers["location"] == "/setup"


async def test_setup_creates_the_admin_and_signs_in(hub: Hub, client: httpx.AsyncClient) -> None:
    page = await client.get("/setup")
    resp = await client.post(
        "/setup",
        data={
            "_csrf": form_token(page.text),
            "email": " Admin@Example.com ",
            "password": ADMIN_PASSWORD,
            "password2": ADMIN_PASSWORD,
        },
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("smshub_session=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "secure" not in lowered  # the public URL is http:// here
    async with hub.db.read() as session:
        user = (await session.execute(sa.select(User))).scalar_one()
    assert user.email == "admin@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in user.password_hash
    assert (await client.get("/")).status_code == 200
    # Setup is over: the form now sends to sign-in and refuses a second admin.
    assert (await client.get("/setup")).headers["location"] == "/login"
    again = await client.post(
        "/setup",
        data={
            "_csrf": "x",
            "email": "eve@example.com",
            "password": "p" * 12,
            "password2": "p" * 12,
        },
    )
    assert again.status_code == 303
    assert await count(hub, User) == 1


@pytest.mark.parametrize(
    ("email", "password", "password2", "field", "message"),
    [
        # not an e-mail address
        ("admin", ADMIN_PASSWORD, ADMIN_PASSWORD, "email", "e-mail address"),
        # too short
        (ADMIN_EMAIL, "short", "short", "password", "at least 10"),
        # the repeat differs
        (ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_PASSWORD + "x", "password2", "differ"),
        # nothing at all
        ("", "", "", "email", "e-mail address"),
    ],
)
async def test_setup_rejects_bad_input_next_to_the_field(
    hub: Hub,
    client: httpx.AsyncClient,
    email: str,
    password: str,
    password2: str,
    field: str,
    message: str,
) -> None:
    page = await client.get("/setup")
    resp = await client.post(
        "/setup",
        data={
            "_csrf": form_token(page.text),
            "email": email,
            "password": password,
            "password2": password2,
        },
    )
    assert resp.status_code == 422
    assert message in error_next_to(resp.text, field)
    assert await count(hub, User) == 0


async def test_setup_without_its_form_token_creates_nothing(
    hub: Hub, client: httpx.AsyncClient
) -> None:
    resp = await client.post(
        "/setup",
        data={
            "_csrf": "forged",
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "password2": ADMIN_PASSWORD,
        },
    )
    assert resp.status_code == 422
    assert "expired" in resp.text
    assert await count(hub, User) == 0


@pytest.fixture
async def admin(hub: Hub) -> User:
    return await create_user(hub, ADMIN_EMAIL, ADMIN_PASSWORD)


async def test_signed_out_pages_go_to_login_and_come_back(
    admin: User, client: httpx.AsyncClient
) -> None:
    resp = await client.get("/runs?status=failed")
    assert resp.status_code == 303
    assert resp.headers["location"] == "/login?next=%2Fruns%3Fstatus%3Dfailed"
    page = await client.get(resp.headers["location"])
    signed = await client.post(
        "/login",
        data={
            "_csrf": form_token(page.text),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "next": "/runs?status=failed",
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/runs?status=failed"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
async def test_login_never_redirects_off_site(
    admin: User, client: httpx.AsyncClient, target: str
) -> None:
    page = await client.get("/login")
    resp = await client.post(
        "/login",
        data={
            "_csrf": form_token(page.text),
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "next": target,
        },
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/"


async def test_wrong_password_is_refused_next_to_the_field(
    hub: Hub, admin: User, client: httpx.AsyncClient
) -> None:
    resp = await sign_in(client, password="not the password")
    assert resp.status_code == 422
    assert "wrong e-mail or password" in error_next_to(resp.text, "password")
    assert "smshub_session" not in resp.headers.get("set-cookie", "")
    assert await count(hub, UserSession) == 0
    # An unknown e-mail gets the very same answer.
    unknown = await sign_in(client, email="nobody@example.com")
    assert unknown.status_code == 422
    assert "wrong e-mail or password" in error_next_to(unknown.text, "password")


async def test_login_without_the_form_token_is_refused(
    hub: Hub, admin: User, client: httpx.AsyncClient
) -> None:
    resp = await client.post(
        "/login", data={"_csrf": "forged", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert resp.status_code == 403
    assert await count(hub, UserSession) == 0


async def test_login_is_throttled_per_address_and_email(
    hub: Hub, admin: User, client: httpx.AsyncClient
) -> None:
    for _ in range(hub.settings.login_attempts_per_min):
        assert (await sign_in(client, password="guess guess guess")).status_code == 422
    throttled = await sign_in(client, password="guess guess guess")
    assert throttled.status_code == 429
    assert "too many attempts" in error_next_to(throttled.text, "password")
    # Even the right password waits out the minute.
    assert (await sign_in(client)).status_code == 429
    assert await count(hub, UserSession) == 0
    # Another account from the same address is not locked out by it.
    await create_user(hub, "other@example.com", ADMIN_PASSWORD)
    assert (await sign_in(client, email="other@example.com")).status_code == 303


async def test_logout_ends_the_session_for_good(hub: Hub, admin: User) -> None:
    app = create_app(hub=hub, workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as web:
        assert (await sign_in(web)).status_code == 303
        stolen = web.cookies.get("smshub_session")
        home = await web.get("/")
        out = await web.post("/logout", data={"_csrf": page_csrf(home.text)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert await count(hub, UserSession) == 0
    # A copy of the old cookie is worthless now.
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver.local", cookies={"smshub_session": stolen}
    ) as thief:
        assert (await thief.get("/")).status_code == 303
        assert (await thief.get("/api/v1/messages")).status_code == 401


async def test_expired_sessions_do_not_count(
    hub: Hub, admin: User, client: httpx.AsyncClient
) -> None:
    assert (await sign_in(client)).status_code == 303
    async with hub.db.write() as session:
        await session.execute(
            sa.update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    resp = await client.get("/")
    assert resp.status_code == 303 and resp.headers["location"] == "/login"


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://sms.example.com"}])
async def test_cookies_are_secure_behind_https(hub: Hub, admin: User) -> None:
    transport = httpx.ASGITransport(app=create_app(hub=hub, workers=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://sms.example.com") as web:
        page = await web.get("/login")
        assert "secure" in page.headers["set-cookie"].lower()  # the form's token cookie
        resp = await sign_in(web)
        assert resp.status_code == 303
        assert "secure" in resp.headers["set-cookie"].lower()


async def test_the_api_accepts_a_session_and_wants_its_csrf_header_to_change_things(
    hub: Hub, make_channel: Any, client: httpx.AsyncClient
) -> None:
    await make_channel("simulator", config={"phone_number": "+15550100000"})
    assert (await client.get("/api/v1/messages")).status_code == 401
    csrf = await set_up_admin(client)
    assert (await client.get("/api/v1/messages")).status_code == 200
    assert (await client.get("/api/v1/node-types")).status_code == 200
    body = {"to": "+15550001234", "message": "hi"}
    missing = await client.post("/api/v1/send", json=body)
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "csrf_failed"
    wrong = await client.post("/api/v1/send", json=body, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    assert await count(hub, Message) == 0
    ok = await client.post("/api/v1/send", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 202
    assert await count(hub, Message) == 1


async def test_bearer_keys_need_no_csrf_token(
    hub: Hub, make_channel: Any, client: httpx.AsyncClient, api_headers: dict[str, str]
) -> None:
    await make_channel("simulator", config={"phone_number": "+15550100000"})
    resp = await client.post(
        "/api/v1/send", json={"to": "+15550001234", "message": "hi"}, headers=api_headers
    )
    assert resp.status_code == 202


async def test_pages_forbid_framing_and_caching(client: httpx.AsyncClient) -> None:
    pages = [await client.get("/setup")]
    await set_up_admin(client)
    pages += [await client.get("/"), await client.get("/runs?status=nope")]
    for resp in pages:
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/webhooks/ch_nope", "/healthz", "/readyz", "/metrics"])
async def test_ingress_and_health_stay_public(client: httpx.AsyncClient, path: str) -> None:
    method = "POST" if path.startswith("/webhooks") else "GET"
    resp = await client.request(method, path, content=b"{}")
    assert resp.status_code in (200, 404)  # 404: no such channel, but no sign-in asked


def test_cli_user_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.cli import main

    monkeypatch.setenv("SMSHUB_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("SMSHUB_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SMSHUB_SECRET_KEY", "cli-test-key")
    argv = ["user", "create", "--email", "Ops@Example.com", "--password", ADMIN_PASSWORD]
    assert main(argv) == 0
    assert main(argv) == 1  # the address has an account already
    assert main(["user", "create", "--email", "x@example.com", "--password", "short"]) == 1
    answers = iter(["new password 123", "new password 123"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["user", "create", "--email", "ops@example.com", "--reset"]) == 0

    import asyncio

    from hub.app import build_hub
    from hub.services.users import authenticate_password
    from hub.settings import get_settings

    async def check() -> tuple[bool, bool]:
        hub = build_hub(get_settings())
        try:
            old = await authenticate_password(hub, "ops@example.com", ADMIN_PASSWORD)
            new = await authenticate_password(hub, "ops@example.com", "new password 123")
            async with hub.db.read() as session:
                emails = (await session.execute(sa.select(col(User.email)))).scalars().all()
            assert list(emails) == ["ops@example.com"]
            return old is not None, new is not None
        finally:
            await hub.close()

    assert asyncio.run(check()) == (False, True)
