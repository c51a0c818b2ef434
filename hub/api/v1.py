"""REST API ``/api/v1``: sending, messages, channels, devices (contacts: hub.api.contacts)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import get_connector
from hub.api.deps import ApiController, Limit
from hub.context import Hub
from hub.errors import NotFound
from hub.models import Channel, Device, Message
from hub.schemas import (
    ChannelIn,
    ChannelOut,
    ChannelPatch,
    ConnectOut,
    DeviceOut,
    DevicePatch,
    ErrorOut,
    GatewayOut,
    MessageOut,
    MessagePatch,
    Page,
    SendIn,
    SendOut,
    StatusChangeOut,
    WebhookRegistrationOut,
    WebhookUrls,
    view,
)
from hub.services import channels as channel_service
from hub.services import channels_connect, queries, scheduled, sims
from hub.services import contacts as contact_service
from hub.services.sending import SendCommand, submit_send

Cursor = Annotated[
    str | None, QueryParameter(description="`next_cursor` of the previous page.", max_length=40)
]


def message_out(row: Message, history: list[Any] | None = None) -> MessageOut:
    """API view of a message."""
    changes = [view(StatusChangeOut, h) for h in history] if history is not None else None
    return view(MessageOut, row, **{"from": row.from_number, "to": row.to_number}, history=changes)


def channel_out(hub: Hub, row: Channel, *, with_secret: bool) -> ChannelOut:
    """API view of a channel; secret config fields masked."""
    connector = get_connector(row.connector)
    stored = hub.box.decrypt_json(row.secrets_enc) if row.secrets_enc else {}
    shown = dict(row.config)
    for name in connector.config_model.secret_fields():
        if name in stored:
            shown[name] = "********"
    secret = (
        hub.box.decrypt(row.webhook_secret_enc) if with_secret and row.webhook_secret_enc else None
    )
    urls = WebhookUrls(**channel_service.webhook_urls(hub, row))
    return view(ChannelOut, row, config=shown, webhook_urls=urls, webhook_secret=secret)


#: The connect's own errors (the API reference lists them with the usual ones).
CONNECT_ERRORS = {
    409: ResponseSpec(
        data_container=ErrorOut,
        description="connect_unsupported / channel_disabled: not an SMS Gateway for Android "
        "channel, or the channel is disabled",
        generate_examples=False,
    ),
    422: ResponseSpec(
        data_container=ErrorOut,
        description="public_url_not_https / gateway_unreachable / gateway_unauthorized / "
        "gateway_refused: the message says what to fix",
        generate_examples=False,
    ),
}


def connect_out(done: channels_connect.Connected) -> ConnectOut:
    """API view of a connect."""
    return ConnectOut(
        registered=[
            WebhookRegistrationOut(id=r.id, event=r.event, url=r.url) for r in done.setup.registered
        ],
        removed=list(done.setup.removed),
        gateway=GatewayOut(
            connector=done.connector,
            mode=done.mode,
            base_url=done.base_url,
            webhooks_api=done.setup.api_url,
        ),
        signing_key=done.signing_key,
        next_steps=list(done.next_steps),
    )


async def _device_row(session: AsyncSession, device_id: str) -> Device:
    row: Device | None = await session.get(Device, device_id)
    if row is None:
        raise NotFound(f"device {device_id!r} not found", code="device_not_found")
    return row


class SendController(ApiController):
    path = "/send"
    tags = ["messages"]

    @post("/", status_code=202, summary="Send an SMS (now or at send_at)")
    async def send(self, hub: NamedDependency[Hub], data: JSONBody[SendIn]) -> Response[SendOut]:
        """Queue an SMS; 202 with the message id and status queued (scheduled with send_at).
        Same idempotency_key → same message."""
        message, created = await submit_send(
            hub,
            SendCommand(
                to=data.to,
                text=data.message,
                channel_id=data.channel_id,
                device_id=data.device_id,
                sim_slot=data.sim_slot,
                idempotency_key=data.idempotency_key,
                send_at=data.send_at,
                quiet_hours=data.quiet_hours.model_dump() if data.quiet_hours else None,
            ),
        )
        return Response(
            SendOut(id=message.id, sms_id=message.id, status=message.status, duplicate=not created),
            status_code=202,
        )


class MessageController(ApiController):
    path = "/messages"
    tags = ["messages"]

    @get("/", summary="List messages, newest first")
    async def list_messages(
        self,
        hub: NamedDependency[Hub],
        limit: Limit = 50,
        cursor: Cursor = None,
        direction: Annotated[str | None, QueryParameter(pattern="^(inbound|outbound)$")] = None,
        contact: Annotated[
            str | None, QueryParameter(description="Contact id or phone number.", max_length=64)
        ] = None,
        channel_id: Annotated[str | None, QueryParameter(max_length=40)] = None,
        status: Annotated[
            str | None,
            QueryParameter(description="e.g. scheduled, queued, delivered.", max_length=16),
        ] = None,
    ) -> Page[MessageOut]:
        rows, next_cursor = await queries.list_messages(
            hub,
            limit=limit,
            cursor=cursor,
            direction=direction,
            contact=contact,
            channel_id=channel_id,
            status=status,
        )
        return Page[MessageOut](items=[message_out(r) for r in rows], next_cursor=next_cursor)

    @get("/{message_id:str}", summary="One message with its status history")
    async def get_message(self, hub: NamedDependency[Hub], message_id: FromPath[str]) -> MessageOut:
        row, history = await queries.get_message(hub, message_id)
        return message_out(row, history)

    @patch("/{message_id:str}", summary="Change a scheduled message (text, send_at)")
    async def update_message(
        self, hub: NamedDependency[Hub], message_id: FromPath[str], data: JSONBody[MessagePatch]
    ) -> MessageOut:
        """Only while it is scheduled: 409 `not_scheduled` once it is due, sent or cancelled."""
        await scheduled.edit_scheduled(hub, message_id, data.changes())
        row, history = await queries.get_message(hub, message_id)
        return message_out(row, history)

    @post("/{message_id:str}/cancel", status_code=200, summary="Cancel a message not sent yet")
    async def cancel_message(
        self, hub: NamedDependency[Hub], message_id: FromPath[str]
    ) -> MessageOut:
        """A scheduled or queued message no gateway has taken yet becomes `cancelled` and
        never goes out; 409 `not_cancellable` once it has gone (or was cancelled)."""
        await scheduled.cancel_message(hub, message_id)
        row, history = await queries.get_message(hub, message_id)
        return message_out(row, history)


class ChannelController(ApiController):
    path = "/channels"
    tags = ["channels"]

    @post("/", status_code=201, summary="Create a channel")
    async def create(self, hub: NamedDependency[Hub], data: JSONBody[ChannelIn]) -> ChannelOut:
        """Returns the webhook URLs and the webhook secret (generated when not given)."""
        row = await channel_service.create_channel(hub, **data.model_dump())
        return channel_out(hub, row, with_secret=True)

    @get("/", summary="List channels")
    async def list_channels(self, hub: NamedDependency[Hub]) -> list[ChannelOut]:
        return [
            channel_out(hub, r, with_secret=False) for r in await channel_service.list_channels(hub)
        ]

    @get("/{channel_id:str}", summary="One channel, with its webhook secret")
    async def get_channel(self, hub: NamedDependency[Hub], channel_id: FromPath[str]) -> ChannelOut:
        row = await queries.read_one(hub, channel_service.get_channel_row, channel_id)
        return channel_out(hub, row, with_secret=True)

    @patch("/{channel_id:str}", summary="Change a channel")
    async def update(
        self, hub: NamedDependency[Hub], channel_id: FromPath[str], data: JSONBody[ChannelPatch]
    ) -> ChannelOut:
        row = await channel_service.update_channel(hub, channel_id, data.changes())
        return channel_out(hub, row, with_secret=False)

    @post(
        "/{channel_id:str}/connect",
        status_code=200,
        summary="Register the hub's webhooks on the phone",
        responses=CONNECT_ERRORS,
    )
    async def connect(self, hub: NamedDependency[Hub], channel_id: FromPath[str]) -> ConnectOut:
        """SMS Gateway for Android: registers the channel's webhook URL on the gateway for
        sms:received, sms:sent, sms:delivered, sms:failed and system:ping (ids derived from
        the channel, so running it again replaces them) and lists what is registered.
        409 `connect_unsupported` for other gateways, `channel_disabled`; 422
        `public_url_not_https`, `gateway_unreachable`, `gateway_unauthorized`,
        `gateway_refused` say what to fix."""
        done = await channels_connect.connect_channel(hub, channel_id)
        return connect_out(done)

    @delete("/{channel_id:str}", status_code=204, summary="Delete a channel (history is kept)")
    async def remove(self, hub: NamedDependency[Hub], channel_id: FromPath[str]) -> None:
        await channel_service.delete_channel(hub, channel_id)


class DeviceController(ApiController):
    path = "/devices"
    tags = ["channels"]

    @get("/", summary="List devices (phones) with their SIM slots")
    async def list_devices(
        self,
        hub: NamedDependency[Hub],
        channel_id: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> list[DeviceOut]:
        return [
            view(DeviceOut, r, sims=await sims.device_sims(hub, r.id))
            for r in await queries.list_devices(hub, channel_id)
        ]

    @patch("/{device_id:str}", summary="Name a device, set its rate, its SIMs' rates and caps")
    async def update_device(
        self, hub: NamedDependency[Hub], device_id: FromPath[str], data: JSONBody[DevicePatch]
    ) -> DeviceOut:
        """`sims: [{"slot": 0, "rate_per_min": 10, "daily_cap": 200}]`: a SIM's own rate
        (null = the device's, else SMSHUB_DEVICE_RATE_LIMIT_PER_MIN) and daily cap (null =
        none); a field left out keeps its value."""
        changes = data.changes()
        if changes.get("sims"):
            sims.check_sims(changes["sims"])
        row = await contact_service.update_device(hub, device_id, changes)
        if changes.get("sims"):
            await sims.update_sims(hub, device_id, changes["sims"])
            row = await queries.read_one(hub, _device_row, device_id)
        return view(DeviceOut, row, sims=await sims.device_sims(hub, device_id))


route_handlers = [
    SendController,
    MessageController,
    ChannelController,
    DeviceController,
]
