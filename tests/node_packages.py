"""Node.js packages the tests run for real (integrations/zapier, integrations/n8n, the
MySMSGate-style Express receiver): ``npm`` in a package's directory and ``npm ci`` from its
committed lock file, skipping (failing under SMSHUB_REQUIRE_SERVICES=1) when node, npm or
the registry is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import service_missing

# npm's words for "the registry cannot be reached" (skip, not fail, outside CI).
OFFLINE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "network")


def npm(
    package: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``npm ARGS`` in ``package``, output captured."""
    return subprocess.run(
        ["npm", *args],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def npm_ci(package: Path, purpose: str) -> Path:
    """``npm ci`` in ``package`` (its lock file); ``purpose`` says what node is needed for."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        service_missing("node/npm", f"not on PATH (node 20+ {purpose})")
    result = npm(package, "ci", "--no-audit", "--no-fund", "--prefer-offline")
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(word in output for word in OFFLINE):
            service_missing("npm registry", output.strip().splitlines()[-1])
        pytest.fail(f"npm ci failed:\n{output}")
    return package
