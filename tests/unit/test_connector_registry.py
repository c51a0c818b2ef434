"""The connector registry: built-ins, real entry-point plugins, and what it refuses."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import connectors
from connectors import UnknownConnector, all_connectors, get_connector, reload_connectors
from connectors.registry import ENTRY_POINT_GROUP
from connectors.twilio import TwilioConnector

PLUGIN_MODULE = "smshub_test_acme_plugin"
PLUGIN_SOURCE = """
from typing import ClassVar

from connectors.base import Connector, ConnectorConfig


class AcmeConfig(ConnectorConfig):
    token: str = ""


class AcmeConnector(Connector):
    name: ClassVar[str] = "acme"
    title: ClassVar[str] = "Acme SMS"
    config_model = AcmeConfig


class NotAConnector:
    pass


class FakeTwilio(Connector):
    name: ClassVar[str] = "twilio"
    title: ClassVar[str] = "Not really Twilio"
    config_model = AcmeConfig


class BadName(Connector):
    name: ClassVar[str] = "Acme SMS!"
    title: ClassVar[str] = "Bad name"
    config_model = AcmeConfig
"""

Install = Callable[[str], None]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Install a distribution declaring ``smshub.connectors`` entry points, as pip would."""

    def install(entry_points: str) -> None:
        (tmp_path / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
        dist_info = tmp_path / "smshub_test_acme-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: smshub-test-acme\nVersion: 1.0\n"
        )
        (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}")
        monkeypatch.syspath_prepend(str(tmp_path))
        reload_connectors()

    yield install
    sys.modules.pop(PLUGIN_MODULE, None)
    monkeypatch.undo()  # take the plugin off sys.path before rescanning
    reload_connectors()


def test_builtins_are_listed() -> None:
    names = [c.name for c in all_connectors()]
    assert names == ["mysmsgate", "simulator", "smsgate", "twilio", "vonage"]
    # One shared, stateless instance per connector.
    assert isinstance(get_connector("twilio"), TwilioConnector)
    assert get_connector("twilio") is get_connector("twilio")


def test_unknown_name_is_a_clear_key_error() -> None:
    with pytest.raises(UnknownConnector) as excinfo:
        get_connector("twillio")
    assert isinstance(excinfo.value, KeyError)
    assert excinfo.value.name == "twillio"
    assert str(excinfo.value) == (
        "no connector named 'twillio' (installed: mysmsgate, simulator, smsgate, twilio, vonage)"
    )


def test_plugin_found_through_its_entry_point(install_plugin: Install) -> None:
    install_plugin(f"acme = {PLUGIN_MODULE}:AcmeConnector\n")
    acme = get_connector("acme")
    assert type(acme).__name__ == "AcmeConnector"
    assert type(acme).__module__ == PLUGIN_MODULE
    assert "acme" in [c.name for c in all_connectors()]


def test_plugin_cannot_take_a_builtin_name(
    install_plugin: Install, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin(f"twilio = {PLUGIN_MODULE}:FakeTwilio\n")
    with caplog.at_level(logging.WARNING, logger="connectors.registry"):
        assert isinstance(get_connector("twilio"), TwilioConnector)
    assert "name 'twilio' is already taken" in caplog.text


@pytest.mark.parametrize(
    ("entry_point", "logged"),
    [
        # The module is not installed: logged with its traceback, skipped.
        ("ghost = smshub_no_such_module:Ghost", "failed to import"),
        # Not a Connector subclass.
        (f"odd = {PLUGIN_MODULE}:NotAConnector", "is not a Connector subclass"),
        # A name that cannot go in URLs.
        (f"bad = {PLUGIN_MODULE}:BadName", "is not lower-case letters"),
    ],
)
def test_broken_plugins_are_skipped_not_fatal(
    install_plugin: Install, caplog: pytest.LogCaptureFixture, entry_point: str, logged: str
) -> None:
    install_plugin(f"{entry_point}\nacme = {PLUGIN_MODULE}:AcmeConnector\n")
    with caplog.at_level(logging.WARNING, logger="connectors.registry"):
        names = [c.name for c in all_connectors()]
    assert logged in caplog.text
    # The good plugin next to it, and every built-in, still load.
    assert names == ["acme", "mysmsgate", "simulator", "smsgate", "twilio", "vonage"]


def test_lookups_are_cached_until_reload(install_plugin: Install, tmp_path: Path) -> None:
    install_plugin(f"acme = {PLUGIN_MODULE}:AcmeConnector\n")
    assert get_connector("acme")
    sys.modules.pop(PLUGIN_MODULE, None)
    # Uninstalling is not noticed until the registry rescans ...
    (tmp_path / "smshub_test_acme-1.0.dist-info" / "entry_points.txt").write_text("")
    assert get_connector("acme")
    reload_connectors()
    # ... and then it is.
    with pytest.raises(UnknownConnector):
        get_connector("acme")


def test_package_exports_exactly_its_public_names() -> None:
    public = {
        name
        for name, value in vars(connectors).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(connectors.__all__)
