"""What flows do to the world, through the hub's own pipelines (flows.ports.Effects).

Every SMS a flow sends goes through the send pipeline with the step's idempotency key, so
a retried or replayed step never sends twice. Opt-outs and the loop breaker are enforced
here, whatever the flow says: a refused send is stored as a ``suppressed`` message (so a
repeat of the key gets the same answer, and the conversation shows what was held back).

An HTTP request's ``{{ secrets.NAME }}`` placeholders (flows.secrets) become the values
stored at the moment it is sent (hub.services.secrets), in the request only: what the step
keeps, the answer included, has every echo of a value masked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flows import mask_outcome
from flows.ports import (
    ContactUpdate,
    ContactView,
    EffectError,
    HttpCommand,
    HttpOutcome,
    SmsCommand,
    SmsOutcome,
    StartFlowCommand,
    StartFlowOutcome,
)
from hub.context import Hub
from hub.errors import ApiError
from hub.models import utcnow
from hub.phone import InvalidNumber, to_e164
from hub.services.campaigns_schedule import reschedule_contact_fires
from hub.services.contacts import contact_for
from hub.services.flow_contacts import contact_view_of
from hub.services.flow_starts import start_flow
from hub.services.messages import MessageRow
from hub.services.secrets import secret_tokens, values_of
from hub.services.sending import Route, by_idempotency_key, create_outbound, resolve_route
from hub.store import (
    Json,
    Unit,
    as_datetime,
    as_json,
    execute,
    fetch_all,
    fetch_one,
    fetch_value,
    placeholders,
)


def _outcome(message: MessageRow) -> SmsOutcome:
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
        #: The placeholders' key: the executor renders with it, http_request resolves.
        self.secret_tokens = secret_tokens(hub)

    async def send_sms(self, command: SmsCommand) -> SmsOutcome:
        """Queue the SMS (or record it suppressed); a repeated key returns the first outcome."""
        key = f"flow:{command.idempotency_key}"[:200]
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
            # The route may be gone since a first attempt queued it: that answer stands.
            found = await self.hub.store.read(by_idempotency_key(key))
            if found is not None:
                return _outcome(found)
            raise EffectError(exc.message, retryable=False) from exc
        sim_slot = command.sim_slot
        if sim_slot is None and reply is not None:
            sim_slot = reply.sim_slot
        message = await self.hub.store.write(self._queue(key, to, command.text, route, sim_slot))
        return _outcome(message)

    def _queue(
        self, key: str, to: str, text: str, route: Route, sim_slot: int | None
    ) -> Unit[MessageRow]:
        """Unit: the first outcome of this key, or a new (possibly suppressed) message."""
        found = yield from by_idempotency_key(key)
        if found is not None:
            return found
        contact_id, opted_out = yield from contact_for(to)
        reason = yield from self._suppression(contact_id, opted_out, to)
        message = yield from create_outbound(
            self.hub,
            channel_id=route.channel.id,
            contact_id=contact_id,
            to=to,
            text=text,
            device_id=route.device_id,
            sim_slot=sim_slot,
            from_number=route.channel.phone_number,
            idempotency_key=key,
            source="flow",
            suppressed=reason,
        )
        return message

    def _suppression(self, contact_id: str, opted_out: bool, to: str) -> Unit[str | None]:
        """Why this automatic SMS must not go out, if it must not."""
        if opted_out:
            return "opted_out: the contact replied STOP"
        settings = self.hub.settings
        since = utcnow() - timedelta(seconds=settings.loop_breaker_window_s)
        recent = yield from fetch_value(
            "SELECT count(*) FROM messages WHERE contact_id = ? AND direction = 'outbound' "
            "AND source = 'flow' AND status <> 'suppressed' AND created_at > ?",
            (contact_id, since),
        )
        if (recent or 0) >= settings.loop_breaker_max:
            return (
                f"loop_breaker: {recent} automatic SMS to {to} in the last "
                f"{settings.loop_breaker_window_s:g} s (limit {settings.loop_breaker_max})"
            )
        return None

    async def http_request(self, command: HttpCommand) -> HttpOutcome:
        """Send the request through the delivery subsystem's guarded client, its
        secrets' current values in (an unknown name: a non-retryable EffectError)."""
        from hub.delivery.outbound import flow_signing_secret, send_request

        names = self.secret_tokens.names(command)
        values = await values_of(self.hub, names) if names else {}
        sent, used = self.secret_tokens.resolve(command, values)
        outcome = await send_request(
            self.hub,
            url=sent.url,
            method=sent.method,
            headers=dict(sent.headers),
            body=sent.json if sent.content is None else sent.content,
            preset=sent.preset,
            timeout_s=sent.timeout_s,
            # The step's key: a retry or replay of the step carries the same webhook-id.
            sign=(sent.idempotency_key, flow_signing_secret(self.hub)),
        )
        answer = HttpOutcome(
            status=outcome.status,
            body=outcome.body,
            headers=dict(outcome.headers),
            error=outcome.error,
        )
        return mask_outcome(answer, used)

    async def start_flow(self, command: StartFlowCommand) -> StartFlowOutcome:
        """Start another flow's published version (:mod:`hub.services.flow_starts`)."""
        return await start_flow(self.hub, command)

    async def update_contact(self, update: ContactUpdate) -> ContactView:
        """Apply tags, fields, opt-out and group memberships (sets are idempotent by nature;
        an unknown group is an EffectError that changes nothing)."""
        try:
            phone = to_e164(update.phone, self.hub.settings.default_region)
        except InvalidNumber as exc:
            raise EffectError(str(exc), retryable=False) from exc
        view: ContactView = await self.hub.store.write(_update_contact(self.hub, phone, update))
        return view


def _update_contact(hub: Hub, phone: str, update: ContactUpdate) -> Unit[ContactView]:
    contact_id, _ = yield from contact_for(phone)
    row = yield from fetch_one(
        "SELECT opted_out, opted_out_at, tags, fields FROM contacts WHERE id = ?", (contact_id,)
    )
    assert row is not None
    opted_out, opted_at = bool(row[0]), row[1]
    now = utcnow()
    if update.opt_out is not None and update.opt_out != opted_out:
        opted_out, opted_at = update.opt_out, (now if update.opt_out else None)
    tags = [t for t in as_json(row[2]) if t not in update.remove_tags]
    tags += [t for t in update.add_tags if t not in tags]
    fields = {**as_json(row[3]), **update.fields}
    yield from execute(
        "UPDATE contacts SET opted_out = ?, opted_out_at = ?, tags = ?, fields = ?, "
        "updated_at = ? WHERE id = ?",
        (opted_out, as_datetime(opted_at) if opted_at else None, Json(tags), Json(fields))
        + (now, contact_id),
    )
    yield from _change_groups(contact_id, update, now)
    # A changed date field or opt-out moves or cancels the contact's campaign fires.
    yield from reschedule_contact_fires(hub, contact_id, hub.clock())
    view = yield from contact_view_of(phone)
    assert view is not None
    return view


def _change_groups(contact_id: str, update: ContactUpdate, now: datetime) -> Unit[None]:
    """Unit: the contact joins ``add_groups`` and leaves ``remove_groups`` (a membership
    once, whatever the repeats); an unknown group id raises, and the unit writes nothing."""
    wanted = sorted({*update.add_groups, *update.remove_groups})
    if not wanted:
        return
    found = yield from fetch_all(
        f"SELECT id FROM groups WHERE id IN ({placeholders(len(wanted))})", wanted
    )
    unknown = [g for g in wanted if g not in {str(row[0]) for row in found}]
    if unknown:
        raise EffectError(f"unknown group {unknown[0]!r} (no group has this id)", retryable=False)
    for group_id in sorted(set(update.add_groups)):
        yield from execute(
            "INSERT INTO group_members (group_id, contact_id, added_at) VALUES (?, ?, ?) "
            "ON CONFLICT (group_id, contact_id) DO NOTHING",
            (group_id, contact_id, now),
        )
    for group_id in sorted(set(update.remove_groups)):
        yield from execute(
            "DELETE FROM group_members WHERE group_id = ? AND contact_id = ?",
            (group_id, contact_id),
        )


__all__ = ["HubEffects"]
