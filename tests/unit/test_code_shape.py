"""Code a newcomer can read: no module over 450 lines, no function over 60.

(Complexity is ruff's: mccabe at 10, in pyproject.toml.) Migrations are generated and
exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
SOURCES = sorted(
    path
    for package in ("hub", "flows", "connectors", "ui")
    for path in (ROOT / package).rglob("*.py")
    if "migrations" not in path.parts
)


def long_functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function longer than the limit."""
    return [
        (node.name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_module_is_short_and_its_functions_too(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    assert long_functions(ast.parse(text)) == []


def test_a_long_function_is_found() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def short():\n    pass\n\nasync def too_long():\n{body}\n")
    assert long_functions(tree) == [("too_long", 4, MAX_FUNCTION_LINES + 1)]
