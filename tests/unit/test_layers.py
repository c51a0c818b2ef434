"""The layers hold: ui -> hub -> {flows, connectors}, and hub/ has no import cycle.

The contracts live in pyproject.toml (``[tool.importlinter]``) and ``make lint`` runs
them; these tests show that they pass on the tree, that they catch a violation (each
rule is broken on purpose in a copy of the tree), and that hub/ has no cycle of
run-time imports (``TYPE_CHECKING`` imports do not count; imports inside functions do).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "flows", "connectors", "ui")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on a tree with its pyproject.toml, as `make lint` does."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("lint-imports")),
            "--no-cache",
            "--config",
            "pyproject.toml",
        ],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        # The engine must not know the hub (it is tested in memory, without a database).
        ("flows/_intruder.py", "import hub.context\n", True),
        # Nor may a connector reach into the hub or the UI.
        ("connectors/_intruder.py", "from ui import app\n", True),
        # A hub service must not import the browser UI; only the composition root may.
        ("hub/services/_intruder.py", "import ui.pages\n", True),
        # The composition root mounting the UI is the one allowed arrow up.
        ("hub/app.py", None, False),
        # An import only for type checkers is not a run-time dependency.
        (
            "flows/_typing_only.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hub.context\n",
            False,
        ),
    ],
)
def test_a_broken_rule_is_caught(
    tmp_path: Path, module: str, source: str | None, broken: bool
) -> None:
    """Copy the tree, add one import, run lint-imports there the way `make lint` does."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if source is not None:
        (tmp_path / module).write_text(source)
    done = lint_imports(tmp_path)
    assert (done.returncode != 0) is broken, done.stdout + done.stderr
    if broken:
        intruder = module.removesuffix(".py").replace("/", ".")
        assert intruder in done.stdout


def import_cycle(graph: grimp.ImportGraph, package: str) -> list[str]:
    """One cycle of imports between modules inside ``package`` (empty when there is none)."""
    inside = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    imports = {m: graph.find_modules_directly_imported_by(m) & inside for m in inside}
    try:
        TopologicalSorter(imports).prepare()
    except CycleError as exc:
        cycle: list[str] = exc.args[1]
        return cycle
    return []


def test_hub_has_no_import_cycle() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert import_cycle(graph, "hub") == []


def test_a_cycle_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle finder itself: a -> b -> c -> a inside a function counts; d is alone."""
    package = tmp_path / "cyclic_fixture"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic_fixture import b\n")
    (package / "b.py").write_text("def f():\n    from cyclic_fixture import c\n")
    (package / "c.py").write_text("import cyclic_fixture.a\n")
    (package / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cyclic_fixture.a\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_fixture", exclude_type_checking_imports=True, cache_dir=None)
    cycle = import_cycle(graph, "cyclic_fixture")
    assert set(cycle) == {"cyclic_fixture.a", "cyclic_fixture.b", "cyclic_fixture.c"}
