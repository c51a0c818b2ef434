"""smshub: the hub (API, services, store, queue) around the flow engine and the connectors."""

from __future__ import annotations

import importlib.metadata


def version() -> str:
    """The installed package's version (pyproject.toml), or "unknown" outside an install."""
    try:
        return importlib.metadata.version("smshub")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
