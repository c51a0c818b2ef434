"""The engine's ports: everything it needs from the outside world, as Protocols and values.

The hub implements these with its database, job queue and send pipeline;
:mod:`flows.memory` implements them in memory for tests. The contracts that matter for
durability and safety are in the docstrings below; the short version:

* **RunStore** saves a run and its changed steps atomically, with compare-and-swap on
  ``Run.revision`` (raise :class:`StaleRunError` when the stored revision moved on).
* **Scheduler** timers are idempotent per ``(run_id, token)``; a stale timer is harmless.
* **Effects** carry an idempotency key; the same key must never produce a second SMS.
  Raise :class:`EffectError` for failures the flow should see (a retry, the error port);
  any other exception means "crash": nothing is recorded, the step runs again later.
* **TriggerEvent** / **SmsEventData** are the part of the hub's public event contract the
  engine relies on; the hub's producers build a superset of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict, cast, runtime_checkable

from flows.runs import Run, Step
from flows.starts import FLOW_STARTED, StartFlowCommand, StartFlowOutcome

__all__ = [
    "FLOW_STARTED",
    "ChannelRef",
    "Clock",
    "ContactUpdate",
    "ContactView",
    "DeviceRef",
    "EffectError",
    "Effects",
    "FlowSource",
    "HttpCommand",
    "HttpOutcome",
    "ReplyTo",
    "RunExistsError",
    "RunObserver",
    "RunStore",
    "Scheduler",
    "SmsCommand",
    "SmsEventData",
    "SmsOutcome",
    "SmsStatus",
    "StaleRunError",
    "StartFlowCommand",
    "StartFlowOutcome",
    "TriggerEvent",
    "UtcClock",
    "sms_data",
]


# -- errors -------------------------------------------------------------------------------


class StaleRunError(Exception):
    """``save_run`` found a newer revision: another worker moved the run on first."""


class RunExistsError(Exception):
    """``create_run`` was given an id that is already stored."""


class EffectError(Exception):
    """An effect failed in a way the flow should handle.

    ``retryable`` says whether trying again may help (network error, provider 5xx) — the
    node's retry policy then applies — or not (invalid number, no channel configured)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# -- the triggering event -----------------------------------------------------------------


class TriggerEvent(TypedDict):
    """A hub event as the engine is handed it (dispatch, replies) and keeps it
    (``Run.trigger``, which templates see whole as ``trigger``).

    This and :data:`SmsEventData` are the part of the hub's public event contract (the
    envelope of every event it emits) the engine relies on; the hub's producers build a
    superset."""

    id: str
    #: ``sms.received``, ``sms.sent``, ``sms.delivered``, ``sms.failed``, …
    type: str
    #: ISO 8601, UTC.
    timestamp: str
    #: For ``sms.*`` events an :class:`SmsEventData` (read it with :func:`sms_data`).
    data: Mapping[str, Any]


class DeviceRef(TypedDict):
    """The phone an SMS went through (all None for gateways without devices)."""

    #: The hub's id of the device (``dev_…``).
    id: str | None
    #: The gateway's own id of the phone.
    gateway_id: str | None
    name: str | None


class ChannelRef(TypedDict):
    """The channel an SMS went through."""

    id: str
    name: str
    #: The connector's name (``smsgate``, ``twilio``…).
    connector: str


# ``from`` is a keyword, hence the functional syntax.
SmsEventData = TypedDict(
    "SmsEventData",
    {
        "message_id": str | None,
        "from": str | None,
        "to": str | None,
        "body": str | None,
        "channel_id": str,
        "device_id": str | None,
        # 0-based (SIM1 = 0).
        "sim_slot": int | None,
        # ISO 8601, for ``sms.received``.
        "received_at": str,
        "contact_id": str | None,
        # ``sent`` / ``delivered`` / ``failed``, for delivery reports.
        "status": str,
        "error": str | None,
        "device": DeviceRef,
        "channel": ChannelRef,
    },
    total=False,
)
SmsEventData.__doc__ = """The ``data`` of an ``sms.*`` event: the fields the engine reads,
each of which may be missing. Part of the hub's public event contract; the hub's producers
build a superset."""


# mypy types ``.get`` of an unknown TypedDict key as ``object`` instead of failing, so
# readers annotate what they read (``phone: str | None = data.get("from")``): a misspelt
# key then fails the annotation.
def sms_data(event: Mapping[str, Any]) -> SmsEventData:
    """The ``data`` of an ``sms.*`` event, typed (empty if absent)."""
    data = event.get("data")
    return cast(SmsEventData, data) if isinstance(data, Mapping) else {}


# -- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReplyTo:
    """The inbound message an ``sms.reply`` answers: same contact, channel, device, SIM."""

    phone: str
    message_id: str | None = None
    channel_id: str | None = None
    device_id: str | None = None
    sim_slot: int | None = None


@dataclass(frozen=True, kw_only=True)
class SmsCommand:
    """Send one SMS through the hub's send pipeline (opt-outs, loop breaker, routing)."""

    to: str
    text: str
    #: Same key = same message: the pipeline must answer a repeat with the first outcome.
    idempotency_key: str
    channel_id: str | None = None
    device_id: str | None = None
    sim_slot: int | None = None
    #: Set for ``sms.reply`` (and replies a wait sends): answer on the message's route.
    reply_to: ReplyTo | None = None
    run_id: str = ""
    flow_id: str = ""
    node_id: str = ""


SmsStatus = Literal["queued", "suppressed"]


@dataclass(frozen=True, kw_only=True)
class SmsOutcome:
    """What the send pipeline did with an :class:`SmsCommand`."""

    #: queued = accepted for sending; suppressed = refused by policy (opt-out, loop breaker).
    status: SmsStatus
    message_id: str | None = None
    #: Why it was suppressed (``opted_out``, ``loop_breaker``, …).
    reason: str | None = None
    #: The recipient as the pipeline normalized it (E.164); a reply wait listens for it.
    to: str | None = None
    #: The route the pipeline picked (a reply wait listens on this channel).
    channel_id: str | None = None
    device_id: str | None = None
    sim_slot: int | None = None


@dataclass(frozen=True, kw_only=True)
class HttpCommand:
    """One outbound HTTP request (the hub sends it through its delivery subsystem)."""

    url: str
    method: str
    headers: Mapping[str, str]
    #: JSON body (object bodies), or None.
    json: Any = None
    #: Text body (string bodies), or None. At most one of ``json`` and ``content`` is set.
    content: str | None = None
    timeout_s: float = 10.0
    idempotency_key: str = ""
    #: generic / zapier / make / n8n — the hub may tune signing or headers per preset.
    preset: str = "generic"
    run_id: str = ""
    flow_id: str = ""
    node_id: str = ""


@dataclass(frozen=True, kw_only=True)
class HttpOutcome:
    """The response; ``status`` None and ``error`` set when no response came back."""

    status: int | None
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContactUpdate:
    """Change a contact; fields left None / empty are not touched."""

    phone: str
    opt_out: bool | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    #: Group ids the contact joins / leaves (a membership it has already / lacks is no
    #: change). An unknown group id is an ``EffectError(retryable=False)`` and changes
    #: nothing.
    add_groups: tuple[str, ...] = ()
    remove_groups: tuple[str, ...] = ()
    idempotency_key: str = ""
    run_id: str = ""


@dataclass(frozen=True, kw_only=True)
class ContactView:
    """A contact as templates see it (``contact.phone``, ``contact.name``, ``contact.tags``…).

    ``groups`` holds the ids of the groups the contact is a member of (group-aware triggers
    read it); ``id`` is the hub's contact id, None for a number the hub has no record of."""

    phone: str
    opted_out: bool = False
    tags: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None
    name: str = ""
    #: BCP 47 tag ("es", "pt-BR"), None = unknown.
    language: str | None = None
    #: IANA time zone, None = the channel's.
    timezone: str | None = None
    groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the shape stored in ``Run.contact``."""
        return {
            "id": self.id,
            "phone": self.phone,
            "name": self.name,
            "language": self.language,
            "timezone": self.timezone,
            "opted_out": self.opted_out,
            "tags": list(self.tags),
            "fields": dict(self.fields),
            "groups": list(self.groups),
        }


# -- protocols ------------------------------------------------------------------------------


@runtime_checkable
class RunStore(Protocol):
    """Durable storage of runs and steps.

    Atomicity: :meth:`save_run` writes the run row and every given step (insert or
    update by ``(run_id, seq)``) in one transaction. Concurrency: it succeeds only if the
    stored ``revision`` equals ``run.revision`` and then stores ``revision + 1``
    (``UPDATE runs SET …, revision = revision + 1 WHERE id = :id AND revision = :rev``);
    otherwise it raises :class:`StaleRunError` and writes nothing. The executor bumps
    ``run.revision`` itself after a successful save.
    """

    async def create_run(self, run: Run, steps: Sequence[Step]) -> None:
        """Insert a new run (revision 0) and its first steps; RunExistsError if the id exists."""
        ...

    async def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""
        ...

    async def save_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        """Atomically update the run (compare-and-swap on revision) and upsert the steps."""
        ...

    async def get_step(self, run_id: str, seq: int) -> Step | None:
        """One step by its sequence number."""
        ...

    async def list_steps(self, run_id: str) -> list[Step]:
        """All steps of a run ordered by ``seq`` (run history)."""
        ...

    async def find_waiting_run(self, contact_phone: str, channel_id: str | None) -> Run | None:
        """The run in status ``waiting`` with a reply wait for this contact on this channel.

        A wait recorded with ``channel_id`` None matches any channel. If several match
        (should not happen: a new wait supersedes the old), return the latest created."""
        ...


@runtime_checkable
class FlowSource(Protocol):
    """Where flow definitions come from. Versions are immutable once published."""

    async def get_definition(self, flow_id: str, version: int) -> Mapping[str, Any] | None:
        """The flow document of that version (as stored JSON), or None if unknown."""
        ...


@runtime_checkable
class Effects(Protocol):
    """Everything a flow does to the outside world."""

    async def send_sms(self, command: SmsCommand) -> SmsOutcome:
        """Queue an SMS, or report it suppressed; a repeated key returns the first outcome."""
        ...

    async def http_request(self, command: HttpCommand) -> HttpOutcome:
        """Perform the request and return the response (any status)."""
        ...

    async def update_contact(self, update: ContactUpdate) -> ContactView:
        """Apply the change (creating the contact if needed) and return the contact."""
        ...

    async def start_flow(self, command: StartFlowCommand) -> StartFlowOutcome:
        """Start the flow's published version for the contact or group; a repeated key
        starts nothing new and returns the first outcome."""
        ...


@runtime_checkable
class Scheduler(Protocol):
    """Timers: the hub enqueues a job that calls ``Executor.fire_timer(run_id, token)``."""

    async def schedule(self, run_id: str, at: datetime, token: str) -> None:
        """Arrange one call of fire_timer at ``at`` (or soon after), idempotently per
        ``(run_id, token)`` (e.g. job id ``flow-timer:{run_id}:{token}``). Never early."""
        ...


@runtime_checkable
class Clock(Protocol):
    """The time, as a timezone-aware UTC datetime."""

    def now(self) -> datetime:
        """Current time."""
        ...


class RunObserver(Protocol):
    """What the engine tells whoever watches it (the hub's metrics); called inline, so it
    must be cheap and must not raise."""

    def step_ran(self, node_type: str, seconds: float) -> None:
        """A step's handler of ``node_type`` returned (or raised) after ``seconds``."""
        ...

    def run_ended(self, status: str) -> None:
        """The store took the save that ended a run (completed, failed or cancelled)."""
        ...


class UtcClock:
    """The real clock (the hub's default Clock)."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)
