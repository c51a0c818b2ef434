"""API keys: create (the key is shown once), last use, revoke."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Template

from hub.services import apikeys
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render, see_other


class ApiKeysController(Controller):
    path = "/settings/api-keys"
    guards = [require_user]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        *,
        status_code: int = 200,
        errors: FormErrors | None = None,
        values: dict[str, str] | None = None,
        new_key: str | None = None,
        new_name: str | None = None,
    ) -> Template:
        return render(
            request,
            "settings/api_keys.html",
            status_code=status_code,
            keys=await apikeys.list_api_keys(hub_of(request)),
            errors=errors or FormErrors(),
            values=values or {},
            new_key=new_key,
            new_name=new_name,
            public_url=hub_of(request).settings.public_url.rstrip("/"),
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return await self._page(request)

    @post("/", status_code=200)
    async def create(self, request: Request[Any, Any, Any]) -> Template:
        """Create a key and show it this once (only its hash is stored)."""
        form = await read_form(request)
        errors = FormErrors()
        name = errors.required(form, "name", "name the key after who uses it, e.g. 'Zapier'")
        if errors:
            return await self._page(request, status_code=422, errors=errors, values=form)
        row, plain = await apikeys.create_api_key(hub_of(request), name)
        return await self._page(request, new_key=plain, new_name=row.name)

    @post("/{key_id:str}/revoke", status_code=303)
    async def revoke(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> Response[Any]:
        """Revoke a key (it stops working within seconds everywhere)."""
        await apikeys.revoke_api_key(hub_of(request), key_id)
        return see_other("/settings/api-keys")
