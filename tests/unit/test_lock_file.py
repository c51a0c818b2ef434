"""requirements.lock, the pinned install `make venv` uses, agrees with pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[2]


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ]


def _pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, _marker = line.partition(";")
        name, sep, version = spec.strip().partition("==")
        assert sep, f"not a pin: {line!r}"
        pins[canonicalize_name(name.split("[")[0])] = Version(version.strip())
    return pins


def test_every_declared_dependency_is_pinned_within_its_bounds() -> None:
    pins = _pinned()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock: make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy {requirement}: make lock"
        )


def test_the_makefile_installs_from_the_lock_file() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "$(STAMP): pyproject.toml requirements.lock" in makefile
    assert "-r requirements.lock" in makefile
    assert "--no-deps -e ." in makefile
