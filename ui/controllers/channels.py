"""Channels and devices: add one by picking a connector, its webhook setup, edit, delete."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from pydantic import ValidationError

from connectors.base import CanRegisterWebhooks
from connectors.registry import UnknownConnector, all_connectors, get_connector
from hub.errors import ApiError, NotFound
from hub.phone import InvalidNumber, to_e164
from hub.services import channels as channel_service
from hub.services import channels_connect, queries
from ui import readmodels
from ui.auth import hub_of, require_user
from ui.pages import FormErrors, read_form, render, see_other
from ui.qr import qr_svg
from ui.schema_form import SchemaField, fields_of, parse_values
from ui.simulate_form import simulate_from_form


def _connector(name: str) -> Any:
    try:
        return get_connector(name)
    except UnknownConnector as exc:
        raise NotFound(f"no connector {name!r}", code="connector_not_found") from exc


def _channel_fields(form: dict[str, str], errors: FormErrors, hub_region: str) -> dict[str, Any]:
    """The channel's own inputs (name, auth mode, number), checked."""
    name = errors.required(form, "name", "give the channel a name")
    auth_mode = form.get("auth_mode", "") or None
    if auth_mode not in (None, "signature", "token"):
        errors.add("auth_mode", "pick one of the listed modes")
        auth_mode = None
    phone = form.get("phone_number", "").strip() or None
    if phone:
        try:
            phone = to_e164(phone[:32], hub_region)
        except InvalidNumber as exc:
            errors.add("phone_number", str(exc))
    return {"name": name, "auth_mode": auth_mode, "phone_number": phone}


def _check_config(
    connector: Any, fields: list[SchemaField], config: dict[str, Any], errors: FormErrors
) -> None:
    """Let the connector's model judge the values (messages land next to the inputs); runs
    even after the form's own checks failed, so every bad field is marked at once."""
    try:
        connector.parse_config(config)
    except ValidationError as exc:
        found = FormErrors.from_validation(exc, prefix="cfg.")
        for key, message in found.fields.items():
            errors.add(key, message)
        if found.message:
            errors.message = found.message


def _form_fields(fields: list[SchemaField]) -> list[str]:
    return ["name", "auth_mode", "phone_number", *(f.input_name for f in fields)]


class ChannelsController(Controller):
    path = "/channels"
    guards = [require_user]
    include_in_schema = False

    @get("/")
    async def list_channels(self, request: Request[Any, Any, Any]) -> Template:
        hub = hub_of(request)
        return render(
            request,
            "channels/list.html",
            health=await readmodels.channel_health(hub),
            connectors={c.name: c for c in all_connectors()},
        )

    @get("/new")
    async def pick_connector(self, request: Request[Any, Any, Any]) -> Template:
        """Step 1: which kind of gateway."""
        return render(request, "channels/pick.html", connectors=all_connectors())

    @get("/new/{connector:str}")
    async def new_form(self, request: Request[Any, Any, Any], connector: FromPath[str]) -> Template:
        """Step 2: the connector's settings, as a form generated from its schema."""
        conn = _connector(connector)
        return self._form(request, conn, FormErrors(), {})

    def _form(
        self,
        request: Request[Any, Any, Any],
        conn: Any,
        errors: FormErrors,
        values: dict[str, str],
        status_code: int = 200,
    ) -> Template:
        return render(
            request,
            "channels/new.html",
            status_code=status_code,
            connector=conn,
            fields=fields_of(conn.config_model.model_json_schema()),
            errors=errors,
            values=values,
        )

    @post("/new/{connector:str}", status_code=303)
    async def create(
        self, request: Request[Any, Any, Any], connector: FromPath[str]
    ) -> Response[Any]:
        hub = hub_of(request)
        conn = _connector(connector)
        form = await read_form(request)
        fields = fields_of(conn.config_model.model_json_schema())
        config, errors = parse_values(fields, form)
        own = _channel_fields(form, errors, hub.settings.default_region)
        _check_config(conn, fields, config, errors)
        if not errors:
            try:
                row = await channel_service.create_channel(
                    hub, connector=conn.name, config=config, **own
                )
            except ApiError as exc:
                errors = FormErrors.from_api_error(exc).shown_on(_form_fields(fields))
            else:
                return see_other(f"/channels/{row.id}?created=1")
        return self._form(request, conn, errors, form, status_code=422)

    @get("/{channel_id:str}")
    async def detail(
        self,
        request: Request[Any, Any, Any],
        channel_id: FromPath[str],
        created: FromQuery[str | None] = None,
    ) -> Template:
        """Webhook URLs, secret and QR code, devices, settings."""
        return await self._detail(request, channel_id, created=bool(created))

    async def _detail(
        self,
        request: Request[Any, Any, Any],
        channel_id: str,
        *,
        created: bool = False,
        status_code: int = 200,
        **extra: Any,
    ) -> Template:
        hub = hub_of(request)
        async with hub.db.read() as session:
            row = await channel_service.get_channel_row(session, channel_id)
        conn = get_connector(row.connector)
        urls = channel_service.webhook_urls(hub, row)
        secret = hub.box.decrypt(row.webhook_secret_enc) if row.webhook_secret_enc else None
        fields = fields_of(conn.config_model.model_json_schema())
        secret_names = conn.config_model.secret_fields()
        values = {f"cfg.{k}": v for k, v in row.config.items() if k not in secret_names}
        context: dict[str, Any] = {
            "channel": row,
            "connector": conn,
            "urls": urls,
            "secret": secret,
            # A phone's camera opens or copies a URL; no gateway app reads anything richer.
            "qr": qr_svg(urls["default"]),
            "devices": await queries.list_devices(hub, row.id),
            "created": created,
            "fields": fields,
            "edit_values": {
                **{k: "" if v is None else str(v) for k, v in values.items()},
                "name": row.name,
                "phone_number": row.phone_number or "",
                "auth_mode": row.auth_mode,
            },
            "edit_errors": FormErrors(),
            "sim_errors": FormErrors(),
            "sim_values": {},
            "can_connect": isinstance(conn, CanRegisterWebhooks),
            "connect_result": None,
            "connect_error": None,
        }
        context.update(extra)
        return render(request, "channels/detail.html", status_code=status_code, **context)

    @post("/{channel_id:str}/edit", status_code=303)
    async def edit(
        self, request: Request[Any, Any, Any], channel_id: FromPath[str]
    ) -> Response[Any]:
        """Change name, number, auth mode, settings (a blank secret keeps the stored one)."""
        hub = hub_of(request)
        async with hub.db.read() as session:
            row = await channel_service.get_channel_row(session, channel_id)
        conn = get_connector(row.connector)
        form = await read_form(request)
        fields = fields_of(conn.config_model.model_json_schema())
        config, errors = parse_values(fields, form, keep_blank_secrets=True)
        own = _channel_fields(form, errors, hub.settings.default_region)
        if not errors:
            stored = {**row.config, **hub.box.decrypt_json(row.secrets_enc)}
            _check_config(conn, fields, {**stored, **config}, errors)
        if not errors:
            try:
                await channel_service.update_channel(
                    hub,
                    channel_id,
                    {
                        "name": own["name"],
                        "auth_mode": own["auth_mode"],
                        "phone_number": own["phone_number"],
                        "config": config,
                        "enabled": form.get("enabled") in ("on", "true"),
                    },
                )
            except ApiError as exc:
                errors = FormErrors.from_api_error(exc).shown_on(_form_fields(fields))
            else:
                return see_other(f"/channels/{channel_id}")
        return await self._detail(
            request, channel_id, status_code=422, edit_errors=errors, edit_values=form
        )

    @post("/{channel_id:str}/connect", status_code=200)
    async def connect(self, request: Request[Any, Any, Any], channel_id: FromPath[str]) -> Template:
        """Register the hub's webhooks on the phone (SMS Gateway for Android); the page shows
        what is registered and what is left to do, or what to fix."""
        try:
            done = await channels_connect.connect_channel(hub_of(request), channel_id)
        except NotFound:
            raise
        except ApiError as exc:
            return await self._detail(
                request, channel_id, status_code=exc.status_code, connect_error=exc
            )
        return await self._detail(request, channel_id, connect_result=done)

    @post("/{channel_id:str}/delete", status_code=303)
    async def delete(
        self, request: Request[Any, Any, Any], channel_id: FromPath[str]
    ) -> Response[Any]:
        """Delete a channel (its messages stay)."""
        await channel_service.delete_channel(hub_of(request), channel_id)
        return see_other("/channels")

    @post("/{channel_id:str}/simulate", status_code=303)
    async def simulate(
        self, request: Request[Any, Any, Any], channel_id: FromPath[str]
    ) -> Response[Any]:
        """A simulated SMS arrives on this (simulator) channel through its signed webhook."""
        form = await read_form(request)

        async def show_errors(status_code: int, errors: FormErrors) -> Response[Any]:
            return await self._detail(
                request, channel_id, status_code=status_code, sim_errors=errors, sim_values=form
            )

        return await simulate_from_form(
            request, form, channel_id=channel_id, fields=("from", "text"), show_errors=show_errors
        )
