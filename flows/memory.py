"""In-memory implementations of every port: the engine without a database or a queue.

Used by the engine's own tests and by :mod:`flows.testing`; also a readable reference for
the hub's real implementations (the semantics to copy are in :mod:`flows.ports`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flows.nodes._common import normalize_phone
from flows.ports import (
    ContactUpdate,
    ContactView,
    EffectError,
    HttpCommand,
    HttpOutcome,
    RunExistsError,
    SmsCommand,
    SmsOutcome,
    StaleRunError,
    StartFlowCommand,
    StartFlowOutcome,
)
from flows.records import copy_record
from flows.runs import Run, Step
from flows.secrets import SecretTokens, mask_outcome

__all__ = [
    "DEFAULT_START",
    "FakeClock",
    "FakeEffects",
    "HttpCall",
    "InMemoryFlowSource",
    "InMemoryRunStore",
    "InMemoryScheduler",
    "SentSms",
    "copy_record",
]

#: Where fake clocks start: a fixed, timezone-aware instant, so test output is stable.
DEFAULT_START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
#: The loop breaker's defaults (DESIGN: 5 automatic SMS per number per 10 minutes).
DEFAULT_LOOP_LIMIT = 5
DEFAULT_LOOP_WINDOW_S = 600.0


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = start

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` and return the new time."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (never backwards)."""
        self._now = max(self._now, when)


class InMemoryRunStore:
    """RunStore in dicts; copies on the way in and out, as a database would.

    The copies are deep (nothing a caller holds is shared with the store) but made for
    what records hold (dicts, lists and immutable scalars) rather than by
    :func:`copy.deepcopy`. Waiting runs are indexed by phone, so
    :meth:`find_waiting_run` does not scan every run; write runs through the port only.
    """

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.steps: dict[str, dict[int, Step]] = {}
        #: normalized phone -> ids of runs whose stored wait is a reply wait for it.
        self._waiting: dict[str, set[str]] = {}

    async def create_run(self, run: Run, steps: Sequence[Step]) -> None:
        """Insert a new run and its first steps."""
        if run.id in self.runs:
            raise RunExistsError(run.id)
        self._put(copy_record(run))
        self.steps[run.id] = {step.seq: copy_record(step) for step in steps}

    async def get_run(self, run_id: str) -> Run | None:
        """A copy of the stored run."""
        run = self.runs.get(run_id)
        return copy_record(run) if run is not None else None

    async def save_run(self, run: Run, steps: Sequence[Step] = ()) -> None:
        """Compare-and-swap on revision, then store run and steps together."""
        stored = self.runs.get(run.id)
        if stored is None or stored.revision != run.revision:
            raise StaleRunError(run.id)
        saved = copy_record(run)
        saved.revision += 1
        self._put(saved)
        for step in steps:
            self.steps[run.id][step.seq] = copy_record(step)

    async def get_step(self, run_id: str, seq: int) -> Step | None:
        """A copy of one step."""
        step = self.steps.get(run_id, {}).get(seq)
        return copy_record(step) if step is not None else None

    async def list_steps(self, run_id: str) -> list[Step]:
        """Copies of all steps, in order."""
        return [copy_record(s) for _, s in sorted(self.steps.get(run_id, {}).items())]

    async def find_waiting_run(self, contact_phone: str, channel_id: str | None) -> Run | None:
        """The latest run waiting for this contact's reply on this channel (or any)."""
        phone = normalize_phone(contact_phone)
        found = [
            run
            for run_id in self._waiting.get(phone, ())
            if (run := self.runs[run_id]).wait is not None
            and (
                run.wait.channel_id is None
                or channel_id is None
                or run.wait.channel_id == channel_id
            )
        ]
        if not found:
            return None
        return copy_record(max(found, key=lambda r: (r.created_at, r.id)))

    def _put(self, run: Run) -> None:
        old = self.runs.get(run.id)
        if old is not None and (phone := _reply_wait_phone(old)) is not None:
            self._waiting[phone].discard(run.id)
        self.runs[run.id] = run
        if (phone := _reply_wait_phone(run)) is not None:
            self._waiting.setdefault(phone, set()).add(run.id)


def _reply_wait_phone(run: Run) -> str | None:
    """The normalized phone a stored run waits for a reply from, if it does."""
    wait = run.wait
    if run.status != "waiting" or wait is None or wait.kind != "reply":
        return None
    return normalize_phone(wait.contact_phone or "")


class InMemoryFlowSource:
    """FlowSource over a dict; :meth:`publish` adds a version."""

    def __init__(self) -> None:
        self.versions: dict[str, list[dict[str, Any]]] = {}

    def publish(self, flow_id: str, definition: Mapping[str, Any]) -> int:
        """Store a new version of ``flow_id`` and return its number (1, 2, …)."""
        # A JSON round trip: stored definitions are plain data, never shared objects.
        self.versions.setdefault(flow_id, []).append(json.loads(json.dumps(definition)))
        return len(self.versions[flow_id])

    def latest(self, flow_id: str) -> int:
        """The newest version number of a flow."""
        return len(self.versions[flow_id])

    async def get_definition(self, flow_id: str, version: int) -> Mapping[str, Any] | None:
        """That version's document, or None."""
        versions = self.versions.get(flow_id, [])
        return versions[version - 1] if 1 <= version <= len(versions) else None


class InMemoryScheduler:
    """Timers in a dict keyed by (run id, token): scheduling twice is one timer."""

    def __init__(self) -> None:
        self.timers: dict[tuple[str, str], datetime] = {}

    async def schedule(self, run_id: str, at: datetime, token: str) -> None:
        """Remember the timer (idempotent per run and token)."""
        self.timers[(run_id, token)] = at

    def due(self, now: datetime) -> list[tuple[datetime, str, str]]:
        """Timers due at ``now``, earliest first, as (at, run id, token)."""
        return sorted((at, run, token) for (run, token), at in self.timers.items() if at <= now)

    def next_at(self) -> datetime | None:
        """When the earliest timer is due."""
        return min(self.timers.values(), default=None)

    def pop(self, run_id: str, token: str) -> None:
        """Forget a timer (it fired)."""
        self.timers.pop((run_id, token), None)


@dataclass
class SentSms:
    """One SMS the fake send pipeline took (repeats of a key are not listed again)."""

    command: SmsCommand
    outcome: SmsOutcome
    at: datetime


@dataclass
class HttpCall:
    """One HTTP request the fake performed."""

    command: HttpCommand
    outcome: HttpOutcome
    at: datetime


HttpResponder = Callable[[HttpCommand], HttpOutcome]
#: (command, phone, run id, broadcast id) -> the started run's status.
FlowStarter = Callable[[StartFlowCommand, str | None, str, str | None], Awaitable[str]]
#: What the fake answers an unscripted request (immutable, so one instance does).
_DEFAULT_HTTP = HttpOutcome(
    status=200, body='{"status": "success"}', headers={"content-type": "application/json"}
)


@dataclass
class _Scripted:
    outcome: HttpOutcome | EffectError
    times: int | None


class FakeEffects:
    """Effects that record instead of acting, with the hub's safety rules simulated.

    * SMS are deduplicated by idempotency key (a repeat returns the first outcome).
    * Opted-out contacts get ``suppressed`` / ``opted_out``.
    * A loop breaker suppresses (``loop_breaker``) more than ``loop_limit`` SMS to one
      number within ``loop_window_s`` seconds.
    * HTTP answers 200 ``{"status": "success"}`` unless scripted with :meth:`respond`;
      ``secrets.NAME`` is sent as ``secrets[NAME]`` (masked in the answer, as in the hub).
    """

    def __init__(
        self,
        clock: FakeClock,
        *,
        loop_limit: int = DEFAULT_LOOP_LIMIT,
        loop_window_s: float = DEFAULT_LOOP_WINDOW_S,
        default_channel: str = "ch_test",
        log: list[str] | None = None,
    ) -> None:
        self.clock = clock
        self.loop_limit = loop_limit
        self.loop_window_s = loop_window_s
        self.default_channel = default_channel
        self.sms: list[SentSms] = []
        self.sms_calls: list[SmsCommand] = []
        self.http: list[HttpCall] = []
        #: Secret name -> value (what ``{{ secrets.NAME }}`` sends); the executor's tokens.
        self.secrets: dict[str, str] = {}
        self.secret_tokens = SecretTokens(b"flows.memory")
        self.contacts: dict[str, ContactView] = {}
        #: Group id -> name: the groups ``contact.group_add`` may use (:meth:`add_group`).
        self.groups: dict[str, str] = {}
        #: Starts one run for ``flow.start`` (the harness sets it: it has the executor).
        self.flow_starter: FlowStarter | None = None
        #: Every start that started something (repeats of a key are not listed again).
        self.flow_starts: list[StartFlowCommand] = []
        self._starts: dict[str, StartFlowOutcome] = {}
        self.log = log if log is not None else []
        self._by_key: dict[str, SmsOutcome] = {}
        self._http_script: list[tuple[str | None, _Scripted]] = []
        self._sms_failures: list[EffectError] = []
        self._messages = 0
        #: normalized number -> when each SMS queued to it was taken (the loop breaker's view).
        self._queued_at: dict[str, list[datetime]] = {}

    # -- simulation controls ---------------------------------------------------------------

    def opt_out(self, phone: str) -> None:
        """Mark a contact opted out: SMS to them come back suppressed."""
        self._set_contact(phone, opted_out=True)

    def opt_in(self, phone: str) -> None:
        """Undo :meth:`opt_out`."""
        self._set_contact(phone, opted_out=False)

    def respond(
        self,
        url: str | None = None,
        *,
        status: int = 200,
        body: str | Mapping[str, Any] | None = None,
        error: str | None = None,
        times: int | None = None,
    ) -> None:
        """Script the answer for requests to ``url`` (None = any URL); ``times`` None =
        always. ``error`` simulates no response at all (network failure)."""
        text = json.dumps(body) if isinstance(body, Mapping) else (body or "")
        outcome = HttpOutcome(
            status=None if error else status,
            body=text,
            error=error,
            headers={"content-type": "application/json"},
        )
        self._http_script.insert(0, (url, _Scripted(outcome, times)))

    def fail_sms(
        self, message: str = "gateway unavailable", *, retryable: bool = True, times: int = 1
    ) -> None:
        """Make the next ``times`` new SMS fail with an EffectError."""
        self._sms_failures.extend(EffectError(message, retryable=retryable) for _ in range(times))

    def add_group(self, group_id: str, name: str = "") -> None:
        """Make a group known (an unknown group id is an effect error, as in the hub)."""
        self.groups[group_id] = name or group_id

    def members(self, group_id: str) -> list[str]:
        """The phones of a group's members, in order."""
        return sorted(c.phone for c in self.contacts.values() if group_id in c.groups)

    def contact(self, phone: str) -> ContactView:
        """The fake contact record (created on first use)."""
        key = normalize_phone(phone)
        if key not in self.contacts:
            self.contacts[key] = ContactView(phone=phone)
        return self.contacts[key]

    # -- the Effects port ----------------------------------------------------------------

    async def send_sms(self, command: SmsCommand) -> SmsOutcome:
        """Dedupe by key, apply opt-out and loop breaker, record."""
        self.sms_calls.append(command)
        if command.idempotency_key in self._by_key:
            return self._by_key[command.idempotency_key]
        if self._sms_failures:
            raise self._sms_failures.pop(0)
        outcome = self._decide(command)
        self._by_key[command.idempotency_key] = outcome
        now = self.clock.now()
        self.sms.append(SentSms(command=command, outcome=outcome, at=now))
        if outcome.status == "queued" and outcome.to is not None:  # normalized by _decide
            self._queued_at.setdefault(outcome.to, []).append(now)
        note = f" [suppressed: {outcome.reason}]" if outcome.status == "suppressed" else ""
        sim = f" sim {command.sim_slot}" if command.sim_slot is not None else ""
        self.log.append(f"flow -> {command.to}{sim}: {command.text}{note}")
        return outcome

    async def http_request(self, command: HttpCommand) -> HttpOutcome:
        """Answer from the script (or 200) and record what was sent (secrets in)."""
        sent, used = self.secret_tokens.resolve(command, self.secrets)
        outcome = self._scripted(sent)
        if isinstance(outcome, EffectError):
            raise outcome
        self.http.append(HttpCall(command=sent, outcome=outcome, at=self.clock.now()))
        shown = outcome.status if outcome.status is not None else outcome.error
        self.log.append(f"flow -> {command.method} {command.url} ({shown})")
        return mask_outcome(outcome, used)

    async def update_contact(self, update: ContactUpdate) -> ContactView:
        """Apply the change to the fake contact record."""
        unknown = [g for g in (*update.add_groups, *update.remove_groups) if g not in self.groups]
        if unknown:
            raise EffectError(f"unknown group {unknown[0]!r}", retryable=False)
        current = self.contact(update.phone)
        tags = [t for t in current.tags if t not in update.remove_tags]
        tags += [t for t in update.add_tags if t not in tags]
        groups = {g for g in current.groups if g not in update.remove_groups}
        view = replace(
            current,
            opted_out=current.opted_out if update.opt_out is None else update.opt_out,
            tags=tuple(tags),
            fields={**current.fields, **update.fields},
            groups=tuple(sorted(groups | set(update.add_groups))),
        )
        self.contacts[normalize_phone(update.phone)] = view
        self.log.append(f"contact {view.phone} updated: {_describe_update(update)}")
        return view

    async def start_flow(self, command: StartFlowCommand) -> StartFlowOutcome:
        """Start the run (or a run per group member) through :attr:`flow_starter`; a
        repeated key returns the first outcome."""
        if command.idempotency_key in self._starts:
            return self._starts[command.idempotency_key]
        if self.flow_starter is None:
            raise EffectError("these fake effects cannot start flows", retryable=False)
        if command.group_id is not None:
            if command.group_id not in self.groups:
                raise EffectError(f"unknown group {command.group_id!r}", retryable=False)
            broadcast_id = command.child_broadcast_id()
            for phone in self.members(command.group_id):
                run_id = command.child_run_id(normalize_phone(phone))
                await self.flow_starter(command, phone, run_id, broadcast_id)
            outcome = StartFlowOutcome(broadcast_id=broadcast_id)
        else:
            run_id = command.child_run_id()
            status = await self.flow_starter(command, command.phone, run_id, None)
            outcome = StartFlowOutcome(run_id=run_id, status=status)
        self._starts[command.idempotency_key] = outcome
        self.flow_starts.append(command)
        whom = f"group {command.group_id}" if command.group_id else command.phone or "nobody"
        self.log.append(f"flow {command.flow_id} started for {whom}")
        return outcome

    # -- internals -----------------------------------------------------------------------

    def _decide(self, command: SmsCommand) -> SmsOutcome:
        channel = command.channel_id or self.default_channel
        to = normalize_phone(command.to)
        known = self.contacts.get(to)
        if known is not None and known.opted_out:
            return SmsOutcome(status="suppressed", reason="opted_out", to=to, channel_id=channel)
        since = self.clock.now() - timedelta(seconds=self.loop_window_s)
        recent = [at for at in self._queued_at.get(to, ()) if at > since]
        if len(recent) >= self.loop_limit:
            return SmsOutcome(status="suppressed", reason="loop_breaker", to=to, channel_id=channel)
        self._messages += 1
        return SmsOutcome(
            status="queued",
            message_id=f"msg_out_{self._messages}",
            to=to,
            channel_id=channel,
            device_id=command.device_id,
            sim_slot=command.sim_slot,
        )

    def _scripted(self, command: HttpCommand) -> HttpOutcome | EffectError:
        for url, script in self._http_script:
            if url is not None and url != command.url:
                continue
            if script.times is not None:
                if script.times <= 0:
                    continue
                script.times -= 1
            return script.outcome
        return _DEFAULT_HTTP

    def _set_contact(self, phone: str, *, opted_out: bool) -> None:
        current = self.contact(phone)
        self.contacts[normalize_phone(phone)] = replace(current, opted_out=opted_out)


def _describe_update(update: ContactUpdate) -> str:
    parts: list[str] = []
    if update.opt_out is not None:
        parts.append("opted out" if update.opt_out else "opted in")
    parts += [f"+{t}" for t in update.add_tags] + [f"-{t}" for t in update.remove_tags]
    parts += [f"{k}={v!r}" for k, v in update.fields.items()]
    parts += [f"joined {g}" for g in update.add_groups]
    parts += [f"left {g}" for g in update.remove_groups]
    return ", ".join(parts) or "nothing"
