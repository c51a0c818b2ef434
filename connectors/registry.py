"""Finding connectors: the built-ins, and third-party ones from installed packages.

A package adds a connector by declaring an entry point in the ``smshub.connectors``
group that resolves to a :class:`~connectors.base.Connector` subclass::

    [project.entry-points."smshub.connectors"]
    acme = "smshub_acme.connector:AcmeConnector"

A plugin that fails to import or is not a valid connector is logged and skipped: one
broken package must not stop the hub. A built-in name cannot be taken over by a plugin.
"""

from __future__ import annotations

import functools
import logging
import re
from importlib.metadata import EntryPoint, entry_points

from connectors.base import Connector, ConnectorConfig
from connectors.mysmsgate import MySMSGateConnector
from connectors.simulator import SimulatorConnector
from connectors.smsgate import SMSGateConnector
from connectors.twilio import TwilioConnector
from connectors.vonage import VonageConnector

ENTRY_POINT_GROUP = "smshub.connectors"
BUILTIN_CONNECTORS: tuple[type[Connector], ...] = (
    SimulatorConnector,
    MySMSGateConnector,
    SMSGateConnector,
    TwilioConnector,
    VonageConnector,
)
#: Connector names end up in URLs and config files: keep them plain.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

log = logging.getLogger(__name__)


class UnknownConnector(KeyError):
    """No connector is registered under this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"no connector named {self.name!r} (installed: {', '.join(self.known)})"


def get_connector(name: str) -> Connector:
    """The connector registered as ``name``; UnknownConnector if there is none."""
    found = _connectors()
    try:
        return found[name]
    except KeyError:
        raise UnknownConnector(name, sorted(found)) from None


def all_connectors() -> list[Connector]:
    """Every registered connector, sorted by name."""
    found = _connectors()
    return [found[name] for name in sorted(found)]


def reload_connectors() -> None:
    """Forget what was found, so the next lookup scans entry points again (tests, plugins)."""
    _connectors.cache_clear()


def _entry_points() -> list[EntryPoint]:
    """The installed plugins' entry points (a seam for tests)."""
    return list(entry_points(group=ENTRY_POINT_GROUP))


@functools.cache
def _connectors() -> dict[str, Connector]:
    found: dict[str, Connector] = {cls.name: cls() for cls in BUILTIN_CONNECTORS}
    for ep in _entry_points():
        cls = _load(ep)
        if cls is None:
            continue
        if cls.name in found:
            log.warning(
                "connector plugin %s (%s) skipped: name %r is already taken by %s",
                ep.name,
                ep.value,
                cls.name,
                type(found[cls.name]).__qualname__,
            )
            continue
        found[cls.name] = cls()
    return found


def _load(ep: EntryPoint) -> type[Connector] | None:
    """The connector class an entry point names, or None (logged) when it is unusable."""
    try:
        obj = ep.load()
    except Exception:
        log.exception("connector plugin %s (%s) failed to import", ep.name, ep.value)
        return None
    problem = _spec_problem(obj)
    if problem:
        log.warning("connector plugin %s (%s) skipped: %s", ep.name, ep.value, problem)
        return None
    assert isinstance(obj, type)  # checked by _spec_problem
    return obj


def _spec_problem(obj: object) -> str | None:
    """What makes ``obj`` unusable as a connector class, or None."""
    if not (isinstance(obj, type) and issubclass(obj, Connector)):
        return f"{obj!r} is not a Connector subclass"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        return f"name {name!r} is not lower-case letters, digits, '-' or '_'"
    if not isinstance(getattr(obj, "title", None), str):
        return "it has no title"
    config_model = getattr(obj, "config_model", None)
    if not (isinstance(config_model, type) and issubclass(config_model, ConnectorConfig)):
        return "its config_model is not a ConnectorConfig subclass"
    return None
