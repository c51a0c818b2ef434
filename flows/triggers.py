"""The trigger index: which published flows an event starts (rebuilt on every publish).

Keyword triggers (``first_word``, ``exact``) are looked up by their case-folded keyword,
so matching cost does not grow with the number of keyword flows; ``contains``, ``regex``
and ``any`` triggers are scanned. A flow is started at most once per event (by its first
matching trigger node, in node id order); every matching flow is started.

Group filters of ``trigger.sms_received`` need the sender's groups: :meth:`TriggerIndex.match`
applies them when given the groups, and leaves them out when not (the hub's sink, which
decides whether an event is worth a dispatch job without loading the contact, may so
over-approximate; the dispatch job then matches exactly). Schedules are not matched
against events: :meth:`TriggerIndex.schedules` lists them for whoever fires the ticks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from flows.model import Flow, parse_flow
from flows.nodes import (
    trigger_delivery_status,
    trigger_device_status,
    trigger_run_failed,
    trigger_schedule,
    trigger_sms_received,
)
from flows.nodes._common import MAX_MATCH_TEXT
from flows.ports import sms_data

__all__ = ["PublishedFlow", "ScheduleEntry", "TriggerIndex", "TriggerMatch"]

_TRAILING = ".,!?;:"


@dataclass(frozen=True)
class TriggerMatch:
    """Start a run of ``flow_id`` at ``version`` from trigger node ``node_id``."""

    flow_id: str
    version: int
    node_id: str


@dataclass(frozen=True)
class PublishedFlow:
    """A flow's currently published version, as the index is built from."""

    flow_id: str
    version: int
    definition: Flow | Mapping[str, Any]


@dataclass(frozen=True)
class _SmsEntry:
    match: TriggerMatch
    config: trigger_sms_received.Config


@dataclass(frozen=True)
class _StatusEntry:
    match: TriggerMatch
    config: trigger_delivery_status.Config


@dataclass(frozen=True)
class _DeviceEntry:
    match: TriggerMatch
    config: trigger_device_status.Config


@dataclass(frozen=True)
class _FailedEntry:
    match: TriggerMatch
    config: trigger_run_failed.Config


@dataclass(frozen=True)
class ScheduleEntry:
    """A published ``trigger.schedule`` node: its flow, version and node, and its config."""

    match: TriggerMatch
    config: trigger_schedule.Config


@dataclass
class TriggerIndex:
    """In-memory index of the trigger nodes of published flows."""

    _first_word: dict[str, list[_SmsEntry]] = field(default_factory=dict)
    _exact: dict[str, list[_SmsEntry]] = field(default_factory=dict)
    _scan: list[_SmsEntry] = field(default_factory=list)
    _status: list[_StatusEntry] = field(default_factory=list)
    _http: dict[str, TriggerMatch] = field(default_factory=dict)
    _failed: list[_FailedEntry] = field(default_factory=list)
    _devices: list[_DeviceEntry] = field(default_factory=list)
    _schedules: list[ScheduleEntry] = field(default_factory=list)

    @classmethod
    def build(cls, flows: Iterable[PublishedFlow]) -> TriggerIndex:
        """Index the trigger nodes of these flows (one published version per flow)."""
        index = cls()
        for published in flows:
            index._add(published)
        return index

    def match(
        self, event: Mapping[str, Any], groups: Collection[str] | None = None
    ) -> list[TriggerMatch]:
        """The flows this event starts, sorted by flow id. ``groups``: the group ids of the
        sender of an inbound SMS (None = unknown: group filters are left out)."""
        kind = event.get("type")
        if kind == "sms.received":
            found = [
                e.match
                for e in self._sms_candidates(event)
                if trigger_sms_received.match_sms(e.config, event, groups) is not None
            ]
        elif kind == trigger_run_failed.RUN_FAILED_EVENT:
            found = [
                e.match for e in self._failed if trigger_run_failed.match_failed(e.config, event)
            ]
        elif kind in trigger_device_status.DEVICE_EVENTS:
            found = [
                e.match
                for e in self._devices
                if trigger_device_status.match_device(e.config, event)
            ]
        elif kind in trigger_delivery_status.STATUS_EVENTS:
            found = [
                e.match
                for e in self._status
                if trigger_delivery_status.match_status(e.config, event)
            ]
        else:
            return []
        return _one_per_flow(found)

    def match_http(self, flow_id: str) -> TriggerMatch | None:
        """The trigger.http node of a published flow, if it has one."""
        return self._http.get(flow_id)

    def schedules(self) -> list[ScheduleEntry]:
        """Every published ``trigger.schedule`` node, by flow id and node id."""
        return sorted(self._schedules, key=lambda e: (e.match.flow_id, e.match.node_id))

    @property
    def wants_run_failures(self) -> bool:
        """Whether some published flow starts on ``flow.run.failed``."""
        return bool(self._failed)

    def wants(self, event_type: str) -> bool:
        """Whether some published trigger could start on a hub event of this type (not
        ``sms.*``: those are matched one by one) — ``flow.run.failed``, ``device.*``."""
        if event_type == trigger_run_failed.RUN_FAILED_EVENT:
            return bool(self._failed)
        return event_type in trigger_device_status.DEVICE_EVENTS and bool(self._devices)

    def _sms_candidates(self, event: Mapping[str, Any]) -> list[_SmsEntry]:
        if not self._first_word and not self._exact:
            return self._scan
        text: str | None = sms_data(event).get("body")
        body = str(text or "")[:MAX_MATCH_TEXT].strip()
        first = body.partition(" ")[0].rstrip(_TRAILING).casefold()
        whole = " ".join(body.split()).rstrip(_TRAILING).casefold()
        return [*self._first_word.get(first, []), *self._exact.get(whole, []), *self._scan]

    def _add(self, published: PublishedFlow) -> None:
        flow = published.definition
        if not isinstance(flow, Flow):
            flow = parse_flow(flow)
        for node in sorted(flow.nodes, key=lambda n: n.id):
            match = TriggerMatch(published.flow_id, published.version, node.id)
            try:
                self._add_node(match, node.type, node.config)
            except ValidationError:
                continue  # validation keeps these from being published; never crash dispatch

    def _add_sms(self, match: TriggerMatch, config: Mapping[str, Any]) -> None:
        sms = trigger_sms_received.Config.model_validate(config)
        entry = _SmsEntry(match, sms)
        if sms.match == "first_word":
            for keyword in {k.casefold() for k in sms.keywords}:
                self._first_word.setdefault(keyword, []).append(entry)
        elif sms.match == "exact":
            for keyword in {" ".join(k.split()).casefold() for k in sms.keywords}:
                self._exact.setdefault(keyword, []).append(entry)
        else:
            self._scan.append(entry)

    def _add_node(self, match: TriggerMatch, node_type: str, config: Mapping[str, Any]) -> None:
        if node_type == "trigger.sms_received":
            self._add_sms(match, config)
        elif node_type == "trigger.delivery_status":
            status = trigger_delivery_status.Config.model_validate(config)
            self._status.append(_StatusEntry(match, status))
        elif node_type == "trigger.http":
            self._http.setdefault(match.flow_id, match)
        elif node_type == "trigger.device_status":
            device = trigger_device_status.Config.model_validate(config)
            self._devices.append(_DeviceEntry(match, device))
        elif node_type == "trigger.run_failed":
            failed = trigger_run_failed.Config.model_validate(config)
            self._failed.append(_FailedEntry(match, failed))
        elif node_type == "trigger.schedule":
            schedule = trigger_schedule.Config.model_validate(config)
            self._schedules.append(ScheduleEntry(match, schedule))


def _one_per_flow(matches: list[TriggerMatch]) -> list[TriggerMatch]:
    if len(matches) < 2:
        return matches
    chosen: dict[str, TriggerMatch] = {}
    for match in sorted(matches, key=lambda m: (m.flow_id, m.node_id)):
        chosen.setdefault(match.flow_id, match)
    return list(chosen.values())
