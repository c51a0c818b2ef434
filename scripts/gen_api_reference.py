"""Write docs/api.md from the hub's OpenAPI document (``--check`` fails when it is stale).

Every route the document has, grouped by tag: method, path, summary, who may call it,
parameters, request fields, the answer's fields and the error statuses; then every shape
the routes name. Re-run it after adding or changing a route.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
TARGET = ROOT / "docs" / "api.md"
METHODS = ("get", "post", "put", "patch", "delete")

INTRO = """\
# HTTP API reference

Generated from the OpenAPI document (`GET /schema/openapi.json` on a running hub) by
`scripts/gen_api_reference.py`; do not edit — change the route and run the script again.
The guided tour is in the [README](../README.md#api-overview); webhooks in
[webhooks.md](webhooks.md), event payloads in [events.md](events.md).

**Authentication.** Routes marked *API key or session* need `Authorization: Bearer <key>` (create
one with `smshub apikey create --name NAME`, or on the *API keys* page), or the session
cookie of a signed-in browser — then every method but GET, HEAD and OPTIONS also needs
the page's CSRF token in `X-CSRF-Token`. *Public* routes need neither (gateways
authenticate by signature, see [connectors.md](connectors.md)).

**Errors.** Every error answer is
`{"error": {"code": "...", "message": "...", "details": ...}}` (`details`: null, or for
`validation_error` a list of `{field, message}`). The statuses each route lists:

{errors}

Routes also answer codes of their own (`409 opted_out`, `409 bad_state`, …), named in the
route's section of the README and the topic pages.

**Lists** are newest first, `?limit=` (1 to 200, default 50) and `?cursor=`: pass an
answer's `next_cursor` for the next page (null on the last).
"""


def build_document() -> dict[str, Any]:
    """The OpenAPI document of a hub built on a throwaway var dir (nothing is started)."""
    from hub.app import create_app
    from hub.settings import Settings

    with tempfile.TemporaryDirectory() as var:
        settings = Settings(
            var_dir=Path(var),
            database_url=f"sqlite+aiosqlite:///{var}/docs.db",
            secret_key="api-reference",
            bootstrap_simulator=False,
        )
        document: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    return document


def render(document: dict[str, Any]) -> str:
    """The reference page as Markdown."""
    from hub.api.openapi import ERRORS, TAG_ERRORS

    schemas = document.get("components", {}).get("schemas", {})
    errors = "\n".join(f"- `{status}` {text}" for status, text in ERRORS.items())
    for tag, meanings in TAG_ERRORS.items():
        errors += f"\n\nRoutes tagged *{tag}* read the request themselves:\n\n"
        errors += "\n".join(f"- `{status}` {text}" for status, text in meanings.items())
    lines = [INTRO.replace("{errors}", errors)]
    named: list[str] = []
    for tag, operations in _by_tag(document).items():
        lines += [f"## {tag}", ""]
        for method, path, op in operations:
            lines += _operation(method, path, op, schemas, named)
    lines += ["## Shapes", "", "The objects the routes above answer or nest, by name.", ""]
    for name in _closure(named, schemas):
        lines += [f"### {name}", ""]
        lines += _fields_table(schemas[name], schemas, "field")
    return "\n".join(lines).rstrip() + "\n"


def _by_tag(document: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Operations grouped by their first tag, in the document's order."""
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append((method, path, op))
    return groups


def _operation(
    method: str, path: str, op: dict[str, Any], schemas: dict[str, Any], named: list[str]
) -> list[str]:
    """One route: heading, summary, auth, answer, errors, parameters, body, answer fields."""
    lines = [f"### `{method.upper()} {path}`", "", _cell(op.get("summary") or "")]
    if op.get("description"):
        lines += ["", _cell(op["description"])]
    success, errors = _responses(op)
    auth = "API key or session" if op.get("security") else "public"
    lines += ["", f"Auth: {auth} · Answer: {success} · Errors: {errors}", ""]
    lines += _parameters(op.get("parameters") or [], named)
    lines += _request_body(op, schemas, named)
    lines += _answer(op, schemas, named)
    return lines


def _parameters(params: list[dict[str, Any]], named: list[str]) -> list[str]:
    if not params:
        return []
    lines = ["| parameter | in | type | required | |", "|---|---|---|---|---|"]
    for p in params:
        schema = p.get("schema", {})
        named += _refs(schema)
        required = "yes" if p.get("required") else "no"
        text = _describe(p.get("description") or schema.get("description"), schema)
        lines.append(f"| `{p['name']}` | {p['in']} | {_type(schema)} | {required} | {text} |")
    return [*lines, ""]


def _request_body(op: dict[str, Any], schemas: dict[str, Any], named: list[str]) -> list[str]:
    """The body's fields inline (its shape is this route's own; nested shapes are named)."""
    lines: list[str] = []
    for media_type, content in op.get("requestBody", {}).get("content", {}).items():
        given = content.get("schema", {})
        schema = _resolve(given, schemas)
        named += _refs(schema) if schema is not given else _refs(given)
        if schema.get("properties"):
            lines += [f"Request body (`{media_type}`):", ""]
            lines += _fields_table(schema, schemas, "request field")
        else:
            lines += [f"Request body: `{media_type}` {_type(given)}", ""]
    return lines


def _answer(op: dict[str, Any], schemas: dict[str, Any], named: list[str]) -> list[str]:
    """A named shape as a link (its fields are under Shapes, once), else the fields."""
    answer = _success_schema(op)
    if answer is None:
        return []
    named += _refs(answer)
    schema = _resolve(answer, schemas)
    if "$ref" not in answer and schema.get("properties"):
        return _fields_table(schema, schemas, "response field")
    return [f"Answer body: {_type(answer)}", ""] if schema else []


def _responses(op: dict[str, Any]) -> tuple[str, str]:
    """The success status with its media type, and the error statuses."""
    codes = sorted(op.get("responses", {}))
    ok = [c for c in codes if c.startswith("2")]
    content = op["responses"][ok[0]].get("content") if ok else None
    success = f"`{ok[0]}`" if ok else "—"
    if content and "application/json" not in content:
        success += " " + ", ".join(f"`{m}`" for m in content)
    errors = " ".join(f"`{c}`" for c in codes if c[0] in "45") or "—"
    return success, errors


def _success_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    for code, response in sorted(op.get("responses", {}).items()):
        if code.startswith("2"):
            content = response.get("content") or {}
            media = content.get("application/json")
            return media.get("schema") if media else None
    return None


def _fields_table(schema: dict[str, Any], schemas: dict[str, Any], head: str) -> list[str]:
    required = set(schema.get("required", []))
    lines = [f"| {head} | type | required | |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        text = _describe(prop.get("description"), prop)
        need = "yes" if name in required else "no"
        lines.append(f"| `{name}` | {_type(prop)} | {need} | {text} |")
    return [*lines, ""]


def _describe(description: str | None, schema: dict[str, Any]) -> str:
    """The description, then the default and the bounds a client hits."""
    parts = [_cell(description)] if description else []
    if "default" in schema and schema["default"] not in (None, "", [], {}):
        parts.append(f"Default `{_short(_json(schema['default']))}`.")
    bounds = [
        f"{label} {schema[key]}"
        for key, label in (
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("maxItems", "at most items:"),
        )
        if key in schema
    ]
    if schema.get("pattern"):
        bounds.append(f"pattern `{_cell(schema['pattern'])}`")
    if bounds:
        parts.append("(" + ", ".join(bounds) + ")")
    return " ".join(parts)


def _type(schema: dict[str, Any]) -> str:
    """A schema in a few words: `string`, `list of [ChannelOut](#channelout)`, … or null."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            kinds = [_type(s) for s in schema[key] if s.get("type") != "null"]
            nullable = any(s.get("type") == "null" for s in schema[key])
            text = " or ".join(dict.fromkeys(kinds)) or "any"
            return f"{text} or null" if nullable else text
    if "enum" in schema:
        return " / ".join(f"`{_json(v)}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        inner = schema["additionalProperties"]
        return f"object of {_type(inner)}" if inner else "object"
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return str(kind)


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The component a ``$ref`` names, or the schema itself."""
    if "$ref" in schema:
        resolved: dict[str, Any] = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return resolved
    return schema


def _refs(value: Any) -> list[str]:
    """Every component a JSON value points at, in order."""
    if isinstance(value, dict):
        found = [value["$ref"].rsplit("/", 1)[-1]] if "$ref" in value else []
        for item in value.values():
            found += _refs(item)
        return found
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def _closure(names: list[str], schemas: dict[str, Any]) -> list[str]:
    """The named shapes and every shape they contain, sorted by name."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo += _refs(schemas[name])
    return sorted(seen, key=str.lower)


def _json(value: Any) -> str:
    """A value as JSON writes it (strings bare): `true`, `null`, `["*"]`, `signature`."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _short(value: Any) -> str:
    text = str(value).replace("|", "\\|")
    return text if len(text) <= 60 else text[:57] + "…"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def main() -> int:
    text = render(build_document())
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run scripts/gen_api_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
