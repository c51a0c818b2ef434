"""The ``smshub`` command line, in-process, on a SQLite file."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.app import build_hub
from hub.cli import main
from hub.models import ApiKey, Flow
from hub.services.bootstrap import SIMULATOR_NUMBER, bootstrap
from hub.services.users import create_user
from hub.settings import get_settings

EXAMPLES = Path(__file__).parents[2] / "flows" / "examples"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh var dir and database for the CLI."""
    monkeypatch.setenv("SMSHUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SMSHUB_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("SMSHUB_SECRET_KEY", raising=False)
    return tmp_path


def _rows(model: type, tmp_path: Path) -> list[object]:
    async def read() -> list[object]:
        hub = build_hub(get_settings())
        try:
            async with hub.db.read() as session:
                return list((await session.execute(sa.select(model))).scalars())
        finally:
            await hub.close()

    return asyncio.run(read())


def test_db_upgrade_and_apikey_create_prints_the_key_once(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "revision head" in capsys.readouterr().out
    assert main(["apikey", "create", "--name", "zapier"]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("shk_") and "store it now" in out.err
    [row] = _rows(ApiKey, env)
    assert row.name == "zapier"  # type: ignore[attr-defined]
    assert key not in json.dumps(row.model_dump(mode="json"))  # type: ignore[attr-defined]
    assert (env / "var" / "secret.key").exists()  # generated on first use


def test_flows_import_publish_and_export_round_trip(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = EXAMPLES / "survey.json"
    assert main(["flows", "import", str(path), "--publish"]) == 0
    flow_id = capsys.readouterr().out.strip()
    assert flow_id.startswith("flw_")
    assert main(["flows", "export", flow_id, "--version", "1"]) == 0
    exported = capsys.readouterr().out
    assert json.loads(exported)["name"] == json.loads(path.read_text())["name"]
    # Export of an export is identical: the format is canonical and diff-able.
    again = env / "again.json"
    again.write_text(exported)
    assert main(["flows", "import", str(again)]) == 0
    second = capsys.readouterr().out.strip()
    assert main(["flows", "export", second]) == 0
    assert capsys.readouterr().out == exported
    [first_row, second_row] = sorted(_rows(Flow, env), key=lambda f: f.id)  # type: ignore[attr-defined]
    assert first_row.published_version == 1 and second_row.published_version is None  # type: ignore[attr-defined]


def test_flows_import_of_a_broken_flow_with_publish_says_why(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = env / "bad.json"
    bad.write_text(
        json.dumps(
            {"name": "x", "nodes": [{"id": "a", "type": "sms.reply", "config": {}}], "edges": []}
        )
    )
    assert main(["flows", "import", str(bad), "--publish"]) == 1
    err = capsys.readouterr().err
    assert "problem" in err and "a:" in err
    assert _rows(Flow, env) == []
    assert main(["flows", "import", str(env / "missing.json")]) == 2


def test_first_start_creates_simulator_and_publishes_join(env: Path) -> None:
    main(["db", "upgrade"])

    async def start_twice() -> None:
        hub = build_hub(get_settings())
        try:
            await bootstrap(hub)
            await bootstrap(hub)  # a restart adds nothing
        finally:
            await hub.close()

    asyncio.run(start_twice())
    [flow] = _rows(Flow, env)
    assert flow.name == "JOIN keyword" and flow.published_version == 1  # type: ignore[attr-defined]
    trigger = next(n for n in flow.draft["nodes"] if n["type"] == "trigger.sms_received")  # type: ignore[attr-defined]
    assert len(trigger["config"]["channels"]) == 1
    from hub.models import Channel

    [channel] = _rows(Channel, env)
    assert channel.connector == "simulator" and channel.phone_number == SIMULATOR_NUMBER  # type: ignore[attr-defined]


def test_first_start_prints_the_url_and_what_to_do_next(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSHUB_PUBLIC_URL", "http://127.0.0.1:8123")
    main(["db", "upgrade"])
    capsys.readouterr()

    async def start(then_create_admin: bool = False) -> None:
        hub = build_hub(get_settings())
        try:
            await bootstrap(hub)
            if then_create_admin:
                await create_user(hub, "owner@example.com", "a long password 1")
        finally:
            await hub.close()

    asyncio.run(start(then_create_admin=True))
    notice = capsys.readouterr().err
    assert "Open http://127.0.0.1:8123/ in a browser and create the admin account" in notice
    assert "smshub apikey create" in notice and "docs/gateways/README.md" in notice
    assert "Simulate an inbound SMS" in notice  # the simulator channel exists
    # The default address is loopback only: say so, and what to set for a phone.
    assert "listens on 127.0.0.1 only" in notice and "SMSHUB_HOST=0.0.0.0" in notice
    # Once the admin account exists, a restart is quiet.
    asyncio.run(start())
    assert "create the admin account" not in capsys.readouterr().err


def test_the_notice_on_a_reachable_address_has_no_loopback_warning(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSHUB_HOST", "0.0.0.0")
    monkeypatch.setenv("SMSHUB_PUBLIC_URL", "https://sms.example.com")
    main(["db", "upgrade"])
    capsys.readouterr()

    async def start() -> None:
        hub = build_hub(get_settings())
        try:
            await bootstrap(hub)
        finally:
            await hub.close()

    asyncio.run(start())
    notice = capsys.readouterr().err
    assert "Open https://sms.example.com/ in a browser" in notice
    assert "listens on" not in notice


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    declared = tomllib.loads((EXAMPLES.parents[1] / "pyproject.toml").read_text())
    assert declared["project"]["version"] == importlib.metadata.version("smshub")
    assert capsys.readouterr().out.strip() == f"smshub {declared['project']['version']}"
