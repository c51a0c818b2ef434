"""Settings → MySMSGate webhooks: the two URLs a MySMSGate user knows, and their secret."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Template

from hub.delivery import mysmsgate_setup
from hub.errors import ApiError
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render


class MySmsGateController(Controller):
    path = "/settings/mysmsgate"
    guards = [require_user]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        *,
        status_code: int = 200,
        errors: FormErrors | None = None,
        values: dict[str, str] | None = None,
        saved: bool = False,
    ) -> Template:
        hooks = await mysmsgate_setup.current_hooks(hub_of(request))
        return render(
            request,
            "settings/mysmsgate.html",
            status_code=status_code,
            errors=errors or FormErrors(),
            values=values if values is not None else hooks.urls,
            secret=hooks.secret,
            saved=saved,
        )

    @get("/")
    async def index(self, request: Request[Any, Any, Any]) -> Template:
        return await self._page(request)

    @post("/", status_code=200)
    async def save(self, request: Request[Any, Any, Any]) -> Template:
        """Create, change or remove the two endpoints (a blank URL removes its endpoint)."""
        form = await read_form(request)
        urls = {role: form.get(role, "") for role in mysmsgate_setup.ROLES}
        try:
            await mysmsgate_setup.save_hooks(hub_of(request), urls)
        except ApiError as exc:
            errors = FormErrors.from_api_error(exc)
            if not errors:
                errors.message = exc.message
            return await self._page(request, status_code=422, errors=errors, values=urls)
        return await self._page(request, saved=True)
