"""First-start setup, sign-in and sign-out."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from hub.errors import ApiError
from hub.services import users
from ui.auth import (
    clear_session_cookie,
    hub_of,
    pre_session_ok,
    pre_session_token,
    require_user,
    safe_next,
    set_pre_session_cookie,
    set_session_cookie,
)
from ui.pages import FormErrors, read_form, render, see_other


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    ip = request.client.host if request.client else "-"
    return ip, request.headers.get("user-agent", "")


def _form_page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    token = pre_session_token(request)
    page = render(request, template, status_code=status_code, form_token=token, **context)
    set_pre_session_cookie(page, hub_of(request), token)
    return page


class AuthController(Controller):
    path = "/"
    include_in_schema = False

    @get("/setup")
    async def setup_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Create the admin account (only while there is none)."""
        if await users.users_exist(hub_of(request)):
            return Redirect("/login", status_code=303)
        return _form_page(request, "auth/setup.html", errors=FormErrors(), values={})

    @post("/setup", status_code=303)
    async def setup(self, request: Request[Any, Any, Any]) -> Response[Any]:
        hub = hub_of(request)
        form = await read_form(request)
        if await users.users_exist(hub):
            return Redirect("/login", status_code=303)
        errors = FormErrors()
        if not pre_session_ok(request, form.get(users.CSRF_FIELD)):
            errors.message = "This form expired; it has been refreshed, submit it again."
        elif form.get("password", "") != form.get("password2", ""):
            errors.add("password2", "the two passwords differ")
        if not errors:
            try:
                user = await users.create_user(
                    hub, form.get("email", ""), form.get("password", ""), first_only=True
                )
            except ApiError as exc:
                errors = FormErrors.from_api_error(exc).shown_on(("email", "password"))
            else:
                ip, agent = _client(request)
                token = await users.create_session(hub, user, ip=ip, user_agent=agent)
                response = see_other("/")
                set_session_cookie(response, hub, token)
                return response
        values = {"email": form.get("email", "")}
        return _form_page(request, "auth/setup.html", status_code=422, errors=errors, values=values)

    @get("/login")
    async def login_page(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Response[Any]:
        """The sign-in form."""
        hub = hub_of(request)
        if not await users.users_exist(hub):
            return Redirect("/setup", status_code=303)
        if await users.load_session(hub, request.cookies.get(users.SESSION_COOKIE)):
            return Redirect(safe_next(next), status_code=303)
        return _form_page(
            request, "auth/login.html", errors=FormErrors(), values={}, next=safe_next(next)
        )

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        hub = hub_of(request)
        form = await read_form(request)
        target = safe_next(form.get("next"))
        errors = FormErrors()
        status = 422
        retry_after: int | None = None
        if not pre_session_ok(request, form.get(users.CSRF_FIELD)):
            errors.message = "This form expired; it has been refreshed, sign in again."
            status = 403
        elif not form.get("email", "").strip():
            errors.add("email", "enter your e-mail")
        elif not form.get("password"):
            errors.add("password", "enter your password")
        else:
            ip, agent = _client(request)
            try:
                token = await users.sign_in(
                    hub, form["email"], form["password"], ip=ip, user_agent=agent
                )
            except ApiError as exc:
                errors = FormErrors.from_api_error(exc).shown_on(("email", "password"))
                status = exc.status_code
                retry_after = getattr(exc, "retry_after", None)
            else:
                response = see_other(target)
                set_session_cookie(response, hub, token)
                return response
        values = {"email": form.get("email", "")}
        page = _form_page(
            request,
            "auth/login.html",
            status_code=status,
            errors=errors,
            values=values,
            next=target,
        )
        if retry_after is not None:
            page.headers["Retry-After"] = str(retry_after)
        return page

    @post("/logout", status_code=303, guards=[require_user])
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End the session (the row goes; the cookie is worthless from now on)."""
        hub = hub_of(request)
        await users.end_session(hub, request.cookies.get(users.SESSION_COOKIE))
        response = see_other("/login")
        clear_session_cookie(response, hub)
        return response
