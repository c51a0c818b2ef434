"""The hub's runtime: everything a service or job needs, built once per process.

:class:`Hub` holds the per-process objects; :func:`hub.app.build_hub` (the composition
root) creates and fills it. The fields that are services are typed by the small
Protocols below, so this module — imported by every service — imports none of them.
:class:`Wiring` is what runs: every job by name, the periodic jobs and the event sinks
in order (``hub/wiring.py`` lists them).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from connectors.base import CanReceive, CanSend, Connector, ConnectorConfig, InboundEvent
from flows import Executor, RunStore, TriggerIndex
from hub.crypto import SecretBox
from hub.db import Database
from hub.http_client import AiohttpClient
from hub.settings import Settings
from hub.store import Unit

if TYPE_CHECKING:  # the package hub.delivery imports this module
    from redis.asyncio import Redis

    from hub.delivery.gate import EndpointGate
    from hub.queue.base import Lease
    from hub.throttle import LoginThrottle

#: A job: the hub plus the job row's arguments (ids, never objects). Must be idempotent.
JobFunc = Callable[..., Awaitable[None]]
#: An event sink: a unit (``hub.store``) that sees a batch of public event payloads in the
#: unit that wrote them.
EventSink = Callable[["Hub", list[dict[str, Any]]], Unit[None]]


@dataclass(frozen=True)
class Wiring:
    """What runs in a process: jobs by name, periodic jobs, event sinks in order."""

    #: Every job a row may name; a row naming anything else is not run.
    jobs: Mapping[str, JobFunc]
    #: Sinks every public event is handed to, in this order, in the event's transaction.
    sinks: Sequence[EventSink] = ()
    #: Jobs every worker process queues on a fixed interval (seconds); each is in ``jobs``.
    periodic: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = sorted(set(self.periodic) - set(self.jobs))
        if missing:
            raise ValueError(f"periodic jobs not listed as jobs: {', '.join(missing)}")


@dataclass(frozen=True)
class ChannelRuntime:
    """A channel ready to use: connector instance, validated config, decrypted secrets."""

    id: str
    name: str
    connector: Connector
    config: ConnectorConfig
    webhook_secret: str | None
    auth_mode: str
    url_token: str | None
    phone_number: str | None
    enabled: bool
    #: IANA timezone (daily caps; quiet hours of contacts without one); None = UTC.
    timezone: str | None = None
    #: Default quiet hours of the channel's messages, ``{"start": "21:00", "end": "08:00"}``.
    quiet_hours: dict[str, str] | None = None

    @property
    def signing_secret(self) -> str | None:
        """The key inbound signatures are checked with."""
        return self.connector.signing_secret(self.config, self.webhook_secret)

    # isinstance() against a runtime-checkable Protocol inspects every member each time;
    # a channel's connector never changes, so each answer is worked out once.
    @functools.cached_property
    def can_receive(self) -> bool:
        """Whether the connector takes webhooks (verify + parse)."""
        return isinstance(self.connector, CanReceive)

    @functools.cached_property
    def can_send(self) -> bool:
        """Whether the connector sends SMS (and its capabilities say so)."""
        return isinstance(self.connector, CanSend) and self.connector.capabilities.send


@dataclass
class IngestResult:
    """What one webhook request's events did."""

    stored: int = 0
    duplicates: int = 0
    event_ids: list[str] = field(default_factory=list)


class ChannelLookup(Protocol):
    """Channels by id, as ingress and the send pipeline read them (cached)."""

    async def get(self, channel_id: str) -> ChannelRuntime | None:
        """The channel, or None when it does not exist or is deleted."""

    def invalidate(self, channel_id: str) -> None:
        """Forget a channel after it changed."""


class IngestPort(Protocol):
    """The group-committing writer of gateway events."""

    async def submit(self, channel: ChannelRuntime, events: list[InboundEvent]) -> IngestResult:
        """Queue a request's events and return once they are committed."""


class JobQueue(Protocol):
    """What the rest of the hub needs from a queue engine."""

    def notify(self) -> None:
        """Tell the engine new rows were committed (wake workers / push to Redis)."""

    def lease(self) -> Lease | None:
        """A lease for due jobs this process's own workers take at once (None: they are
        left to polling, or to another process)."""

    @property
    def exclusive(self) -> bool:
        """True while no other process can be running this hub's jobs (the embedded
        default's worker lock is held): a job another process had leased is dead."""

    async def start(self) -> None:
        """Start processing (workers, sweepers)."""

    async def stop(self) -> None:
        """Stop processing; running jobs finish or are left to their lease."""


class Store(Protocol):
    """The hot path's storage (``hub.store``): units of work, group-committed."""

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""

    async def write(self, unit: Any) -> Any:
        """Run a unit in the next write batch; its value once the batch is durable."""

    async def read(self, unit: Any) -> Any:
        """Run a read-only unit."""

    def on_commit(self, listener: Callable[[list[Any]], None]) -> None:
        """Call ``listener`` with the notes of every committed batch."""

    async def close(self) -> None:
        """Finish what is queued, then let go of the database."""


class FlowEngine(Protocol):
    """One process's flow engine: the executor on the hub's ports, and the trigger index."""

    @property
    def executor(self) -> Executor:
        """The executor (flows.Executor) wired to the database and queue."""

    @property
    def store(self) -> RunStore:
        """The run store the executor saves to."""

    async def index(self) -> TriggerIndex:
        """The trigger index of every enabled flow's published version."""

    def cached_index(self) -> TriggerIndex:
        """The trigger index as last built, without touching the database."""

    async def refresh(self) -> None:
        """Rebuild the index now (a flow was published, paused or deleted)."""

    async def close(self) -> None:
        """Stop listening for other processes' flow changes."""


class Hub:
    """Shared runtime objects of one process (the composition root fills it).

    A plain class, not a dataclass: Litestar would otherwise try to validate it as data
    when it is injected into handlers.
    """

    wiring: Wiring
    store: Store
    queue: JobQueue
    channels: ChannelLookup
    ingest: IngestPort
    flows: FlowEngine
    #: In-flight caps and pacing of webhook deliveries per endpoint (caps shared via Redis).
    gates: EndpointGate
    #: Failed sign-ins per address and e-mail, shared by every process (Redis or database).
    login_throttle: LoginThrottle

    def __init__(
        self, *, settings: Settings, db: Database, box: SecretBox, http: AiohttpClient
    ) -> None:
        self.settings = settings
        self.db = db
        self.box = box
        self.http = http
        #: The wall clock; tests freeze it to check signature windows.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: Messages this process's send jobs are handing over now: id -> the job's token.
        self.handing: dict[str, Any] = {}
        #: The Redis client shared state uses (None without ``settings.redis_url``).
        self.redis: Redis | None = None
        #: Set once any account is known to exist (accounts are never deleted from the UI).
        self.users_exist = False

    async def close(self) -> None:
        """Stop the queue and the flow listener, then let go of HTTP pools, the store, the
        database and Redis."""
        await self.queue.stop()
        await self.flows.close()
        await self.http.close()
        await self.store.close()
        await self.db.dispose()
        if self.redis is not None:
            await self.redis.aclose()
