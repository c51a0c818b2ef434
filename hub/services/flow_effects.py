"""What flows do to the world, through the hub's own pipelines (flows.ports.Effects).

Every SMS a flow sends goes through the send pipeline with the step's idempotency key, so
a retried or replayed step never sends twice. Opt-outs and the loop breaker are enforced
here, whatever the flow says: a refused send is stored as a ``suppressed`` message (so a
repeat of the key gets the same answer, and the conversation shows what was held back).
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from flows.ports import (
    ContactUpdate,
    ContactView,
    EffectError,
    HttpCommand,
    HttpOutcome,
    SmsCommand,
    SmsOutcome,
)
from hub.context import Hub
from hub.errors import ApiError
from hub.models import Contact, Message, utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.contacts import get_or_create_contact
from hub.services.sending import create_outbound, resolve_route


def contact_view(contact: Contact) -> ContactView:
    """A contact as flow templates see it."""
    return ContactView(
        phone=contact.phone,
        opted_out=contact.opted_out,
        tags=tuple(contact.tags),
        fields={k: str(v) for k, v in contact.fields.items()},
    )


def _outcome(message: Message) -> SmsOutcome:
    if message.status == "suppressed":
        return SmsOutcome(
            status="suppressed", message_id=message.id, reason=message.error, to=message.to_number
        )
    return SmsOutcome(
        status="queued",
        message_id=message.id,
        to=message.to_number,
        channel_id=message.channel_id,
        device_id=message.device_id,
        sim_slot=message.sim_slot,
    )


class HubEffects:
    """Effects on the hub: SMS through the send pipeline, HTTP through the delivery guard."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def send_sms(self, command: SmsCommand) -> SmsOutcome:
        """Queue the SMS (or record it suppressed); a repeated key returns the first outcome."""
        key = f"flow:{command.idempotency_key}"[:200]
        async with self.hub.db.read() as session:
            found = (
                await session.execute(sa.select(Message).where(col(Message.idempotency_key) == key))
            ).scalar()
        if found is not None:
            return _outcome(found)
        try:
            to = to_e164(command.to, self.hub.settings.default_region)
        except InvalidNumber as exc:
            raise EffectError(str(exc), retryable=False) from exc
        reply = command.reply_to
        try:
            route = await resolve_route(
                self.hub,
                to,
                channel_id=command.channel_id or (reply.channel_id if reply else None),
                device_id=command.device_id or (reply.device_id if reply else None),
            )
        except ApiError as exc:
            raise EffectError(exc.message, retryable=False) from exc
        sim_slot = (
            command.sim_slot
            if command.sim_slot is not None
            else (reply.sim_slot if reply else None)
        )
        async with self.hub.db.write() as session:
            contact = await get_or_create_contact(session, to)
            reason = await self._suppression(session, contact, to)
            message = await create_outbound(
                self.hub,
                session,
                channel_id=route.channel.id,
                contact_id=contact.id,
                to=to,
                text=command.text,
                device_id=route.device_id,
                sim_slot=sim_slot,
                from_number=route.channel.phone_number,
                idempotency_key=key,
                source="flow",
                suppressed=reason,
            )
        self.hub.queue.notify()
        return _outcome(message)

    async def _suppression(self, session: AsyncSession, contact: Contact, to: str) -> str | None:
        """Why this automatic SMS must not go out, if it must not."""
        if contact.opted_out:
            return "opted_out: the contact replied STOP"
        settings = self.hub.settings
        since = utcnow() - timedelta(seconds=settings.loop_breaker_window_s)
        recent = (
            await session.execute(
                sa.select(sa.func.count()).where(
                    col(Message.contact_id) == contact.id,
                    col(Message.direction) == "outbound",
                    col(Message.source) == "flow",
                    col(Message.status) != "suppressed",
                    col(Message.created_at) > since,
                )
            )
        ).scalar() or 0
        if recent >= settings.loop_breaker_max:
            return (
                f"loop_breaker: {recent} automatic SMS to {to} in the last "
                f"{settings.loop_breaker_window_s:g} s (limit {settings.loop_breaker_max})"
            )
        return None

    async def http_request(self, command: HttpCommand) -> HttpOutcome:
        """Send the request through the delivery subsystem's guarded client."""
        from hub.delivery.outbound import flow_signing_secret, send_request

        outcome = await send_request(
            self.hub,
            url=command.url,
            method=command.method,
            headers=dict(command.headers),
            body=command.json if command.content is None else command.content,
            preset=command.preset,
            timeout_s=command.timeout_s,
            # The step's key: a retry or replay of the step carries the same webhook-id.
            sign=(command.idempotency_key, flow_signing_secret(self.hub)),
        )
        return HttpOutcome(
            status=outcome.status,
            body=outcome.body,
            headers=dict(outcome.headers),
            error=outcome.error,
        )

    async def update_contact(self, update: ContactUpdate) -> ContactView:
        """Apply tags, fields and opt-out (sets are idempotent by nature)."""
        try:
            phone = to_e164(update.phone, self.hub.settings.default_region)
        except InvalidNumber as exc:
            raise EffectError(str(exc), retryable=False) from exc
        async with self.hub.db.write() as session:
            contact = await get_or_create_contact(session, phone)
            now = utcnow()
            if update.opt_out is not None and update.opt_out != contact.opted_out:
                contact.opted_out = update.opt_out
                contact.opted_out_at = now if update.opt_out else None
            tags = [t for t in contact.tags if t not in update.remove_tags]
            tags += [t for t in update.add_tags if t not in tags]
            contact.tags = tags
            if update.fields:
                contact.fields = {**contact.fields, **update.fields}
            contact.updated_at = now
            session.add(contact)
            return contact_view(contact)


__all__ = ["HubEffects", "contact_view"]
