"""Example flows shipped with smshub (JSON documents next to this file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EXAMPLES_DIR", "example_names", "load_example"]

#: The directory holding the example ``*.json`` flows.
EXAMPLES_DIR = Path(__file__).resolve().parent


def example_names() -> list[str]:
    """Names of the bundled examples (file names without ``.json``)."""
    return sorted(path.stem for path in EXAMPLES_DIR.glob("*.json"))


def load_example(name: str) -> dict[str, Any]:
    """One example flow document, e.g. ``load_example("join_keyword")``."""
    data: dict[str, Any] = json.loads((EXAMPLES_DIR / f"{name}.json").read_text("utf-8"))
    return data
