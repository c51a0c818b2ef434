"""The deployment docs and the example files under deploy/ name only real things: every
``SMSHUB_*`` variable is a setting, every ``smshub <command>`` a sub-command, every link a
file (and heading) that exists, and the units and the compose file keep their promises."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from hub.cli import build_parser
from hub.settings import Settings

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "deployment.md"
DEPLOY = ROOT / "deploy"
SETTINGS = {f"SMSHUB_{name.upper()}" for name in Settings.model_fields}

#: ``SMSHUB_RETAIN_*`` (a family of settings) or a whole name.
ENV_NAME = re.compile(r"\bSMSHUB_[A-Z0-9_]*[A-Z0-9](?:_\*)?")
#: ``smshub`` used as a command: at the start, after a space, a quote or a path (in
#: ``…@db/smshub smshub serve`` the second one).
COMMAND = re.compile(
    r"(?:^|(?<=[\s\"'`/(]))smshub(?![ \t]+smshub\b)((?:[ \t]+[a-z][a-z-]*)+)", re.M
)


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def code_of(markdown: str) -> str:
    """The fenced blocks and inline code spans of a Markdown text (prose names the
    project, code runs it)."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.M | re.S)
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.M | re.S)
    spans = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", rest)]
    return "\n".join(fenced + spans)


def env_names(text: str) -> set[str]:
    return {m.group(0) for m in ENV_NAME.finditer(text)}


def unknown_settings(names: set[str]) -> set[str]:
    bad = set()
    for name in names:
        if name.endswith("_*"):
            if not any(s.startswith(name[:-1]) for s in SETTINGS):
                bad.add(name)
        elif name not in SETTINGS:
            bad.add(name)
    return bad


def sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def unknown_command(words: list[str]) -> str | None:
    """None when ``smshub <words…>`` starts with a real (sub-)command, else what is wrong."""
    parser = build_parser()
    used: list[str] = []
    for word in words:
        choices = sub_commands(parser)
        if not choices:
            return None  # a leaf: what follows is its arguments
        if word not in choices:
            return f"smshub {' '.join([*used, word])}"
        used.append(word)
        parser = choices[word]
    return f"smshub {' '.join(used)} (needs a sub-command)" if sub_commands(parser) else None


def commands_in(text: str) -> list[list[str]]:
    return [m.group(1).split() for m in COMMAND.finditer(text)]


def sources() -> dict[str, str]:
    """What is checked: the deploy files whole, the deployment doc's code."""
    found = {str(p.relative_to(ROOT)): p.read_text() for p in deploy_files()}
    found["docs/deployment.md (code)"] = code_of(DOC.read_text())
    return found


def test_the_deploy_files_exist() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in deploy_files()}
    assert {
        "Caddyfile",
        "Dockerfile",
        "docker-compose.yml",
        "compose.env.example",
        "smshub.env.example",
        "systemd/smshub-api@.service",
        "systemd/smshub-worker@.service",
        "systemd/smshub-migrate.service",
    } <= names


def test_every_smshub_variable_is_a_setting() -> None:
    seen: set[str] = set()
    for where, text in {**sources(), "docs/deployment.md": DOC.read_text()}.items():
        names = env_names(text)
        assert not unknown_settings(names), (where, unknown_settings(names))
        seen |= names
    assert len(seen) >= 20  # the env example alone names more


def test_every_smshub_command_is_a_cli_command() -> None:
    seen = 0
    for where, text in sources().items():
        for words in commands_in(text):
            seen += 1
            assert unknown_command(words) is None, (where, unknown_command(words))
    assert seen >= 10  # serve, worker, db upgrade in the units, compose and the doc


def test_the_checks_catch_a_misspelt_name() -> None:
    # What a typo in the docs would look like; the checks above must reject it.
    assert unknown_settings(env_names("SMSHUB_REDIS_URI=redis://")) == {"SMSHUB_REDIS_URI"}
    assert unknown_settings(env_names("the SMSHUB_RETAIN_* settings")) == set()
    assert unknown_settings(env_names("the SMSHUB_KEEP_* settings")) == {"SMSHUB_KEEP_*"}
    assert commands_in("ExecStart=/opt/smshub/.venv/bin/smshub wroker") == [["wroker"]]
    assert unknown_command(["wroker"]) == "smshub wroker"
    assert unknown_command(["db", "migrate"]) == "smshub db migrate"
    assert unknown_command(["db"]) is not None
    assert unknown_command(["db", "upgrade", "head"]) is None
    assert commands_in("User=smshub\nWorkingDirectory=/var/lib/smshub\n") == []
    assert commands_in("postgresql+asyncpg://u@db/smshub smshub serve") == [["serve"]]


def _links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(
        r"^#+ (.+)$", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S), re.M
    )
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", ["docs/deployment.md", "README.md"])
def test_every_link_of_the_docs_leads_somewhere(doc: str) -> None:
    path = ROOT / doc
    text = path.read_text()
    targets = [t for t in _links(text) if not re.match(r"[a-z]+:", t)]
    assert targets
    for target in targets:
        file, _sep, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), (doc, target)
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest.read_text()), (doc, target)
    # Files named in code spans (deploy/systemd/..., deploy/Caddyfile) exist too.
    for name in re.findall(r"`(deploy/[\w./@-]*[\w@-])", text):
        assert (ROOT / name).exists(), (doc, name)


def _units() -> dict[str, str]:
    return {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}


def test_the_long_running_units_restart_and_stop_after_a_lease() -> None:
    lease = Settings().job_lease_s
    for name in ("smshub-api@.service", "smshub-worker@.service"):
        unit = _units()[name]
        assert "Restart=always" in unit, name
        assert "KillSignal=SIGTERM" in unit, name
        assert "User=smshub" in unit, name
        assert "EnvironmentFile=/etc/smshub/smshub.env" in unit, name
        assert "Requires=smshub-migrate.service" in unit, name
        stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
        assert stop and int(stop.group(1)) > lease, name
    assert "Type=oneshot" in _units()["smshub-migrate.service"]


def test_the_compose_file_has_every_service_and_redis_keeps_its_queue() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    try:
        import yaml
    except ImportError:  # no PyYAML: check the outline by text
        for name in ("postgres", "redis", "migrate", "api-1", "api-2", "worker", "caddy"):
            assert re.search(rf"^  {name}:", text, re.M), name
        redis = text
    else:
        services = yaml.safe_load(text)["services"]
        assert set(services) == {"postgres", "redis", "migrate", "api-1", "api-2"} | {
            "worker",
            "caddy",
        }
        assert services["worker"]["deploy"]["replicas"] == 2
        for name in ("api-1", "api-2", "worker"):
            needs = services[name]["depends_on"]["migrate"]
            assert needs["condition"] == "service_completed_successfully", name
            assert services[name]["environment"]["SMSHUB_REDIS_URL"], name
        redis = " ".join(services["redis"]["command"])
    for option in ("--maxmemory-policy noeviction", "--appendonly yes", "--appendfsync everysec"):
        assert option in redis


def test_caddy_checks_readiness_and_balances() -> None:
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "health_uri /readyz" in caddy
    assert "lb_policy" in caddy
    assert "reverse_proxy {$UPSTREAMS}" in caddy
