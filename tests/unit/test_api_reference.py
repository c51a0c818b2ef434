"""docs/api.md is generated from the OpenAPI document and covers every route."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "gen_api_reference.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_route_of_the_document_has_a_section() -> None:
    document: dict[str, Any] = _generator().build_document()
    text = (ROOT / "docs" / "api.md").read_text()
    routes = [
        f"### `{method.upper()} {path}`"
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(routes) > 50
    missing = [route for route in routes if route not in text]
    assert not missing, missing


def test_the_document_declares_the_api_key_and_the_error_shape() -> None:
    document: dict[str, Any] = _generator().build_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert document["components"]["schemas"]["ErrorOut"]["properties"] == {
        "error": {"$ref": "#/components/schemas/ErrorBody"}
    }
    assert set(document["components"]["schemas"]["ErrorBody"]["properties"]) == {
        "code",
        "message",
        "details",
    }
    for path, item in document["paths"].items():
        for method, op in item.items():
            # Every /api/v1 route needs the key (or a session); gateway webhooks do not.
            if path.startswith("/api/v1/"):
                assert op.get("security") == [{"bearerAuth": []}, {"sessionCookie": []}], path
            else:
                assert not op.get("security"), path
            errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
            assert "503" in errors, (method, path)
            for code, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, code)
