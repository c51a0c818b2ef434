"""Secrets for flows: list (names and dates, never values), add, replace a value, delete."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from flows import SECRET_NAME_RULE
from hub.errors import ApiError
from hub.services import secrets
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render, see_other

PATH = "/settings/secrets"


class SecretsController(Controller):
    path = PATH
    guards = [require_user]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        *,
        errors: FormErrors | None = None,
        values: dict[str, str] | None = None,
    ) -> Template:
        return render(
            request,
            "settings/secrets.html",
            status_code=422 if errors else 200,
            secrets=await secrets.list_secrets(hub_of(request)),
            errors=errors or FormErrors(),
            values=values or {},
            name_rule=SECRET_NAME_RULE,
            mask=secrets.MASK,
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return await self._page(request)

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Template | Response[Any]:
        """Store a new secret (its value is never shown again)."""
        form = await read_form(request)
        errors = FormErrors()
        name = errors.required(form, "name", "name it as flows will, e.g. ZAP_TOKEN", most=64)
        value = form.get("value", "").strip()
        if not value:
            errors.add("value", "paste the value (a token, a password)")
        shown = {"name": name}
        if errors:
            return await self._page(request, errors=errors, values=shown)
        try:
            await secrets.create_secret(hub_of(request), name, value)
        except ApiError as exc:
            return await self._page(request, errors=FormErrors.from_api_error(exc), values=shown)
        return see_other(PATH)

    @post("/{name:str}/replace", status_code=200)
    async def replace(
        self, request: Request[Any, Any, Any], name: FromPath[str]
    ) -> Template | Response[Any]:
        """A new value: the next request of a flow that uses it sends this one."""
        form = await read_form(request)
        value = form.get("value", "").strip()
        try:
            await secrets.replace_secret(hub_of(request), name, value)
        except ApiError as exc:
            errors = FormErrors.from_api_error(exc, prefix=f"{name}.")
            return await self._page(request, errors=errors)
        return see_other(PATH)

    @post("/{name:str}/delete", status_code=303)
    async def remove(self, request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
        """Delete a secret (flows that name it fail at that step from now on)."""
        await secrets.delete_secret(hub_of(request), name)
        return see_other(PATH)
