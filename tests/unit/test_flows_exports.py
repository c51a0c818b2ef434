"""The package's public face and its purity (no imports from hub, ui, connectors)."""

from __future__ import annotations

import ast
from pathlib import Path

import flows

FLOWS_DIR = Path(flows.__file__).resolve().parent


def test_all_names_exist_and_are_sorted_by_kind() -> None:
    for name in flows.__all__:
        assert hasattr(flows, name), name
    assert len(set(flows.__all__)) == len(flows.__all__)


def test_public_names_do_not_leak_private_ones() -> None:
    assert not [name for name in flows.__all__ if name.startswith("_")]


def test_flows_imports_nothing_from_the_application() -> None:
    offenders = []
    for path in FLOWS_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in {"hub", "ui", "connectors"}
            ]
    assert offenders == []


def test_utc_clock_is_aware() -> None:
    assert flows.UtcClock().now().tzinfo is not None
    assert isinstance(flows.UtcClock(), flows.Clock)
