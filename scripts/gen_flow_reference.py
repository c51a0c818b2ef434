"""Write docs/flow-nodes.md from the node registry (``--check`` fails when it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from flows import node_types_catalog

TARGET = Path(__file__).parents[1] / "docs" / "flow-nodes.md"


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        names = [_type_name(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(dict.fromkeys(names))
    if "$ref" in schema:
        return "object"  # a nested model (trigger.schedule's every)
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_name(schema.get('items', {}))}"
    if kind == "object":
        return "object"
    return str(kind)


def render() -> str:
    """The reference page as Markdown."""
    lines = [
        "# Flow node reference",
        "",
        "Generated from the node registry by `scripts/gen_flow_reference.py`; do not edit.",
        "Fields marked *template* are Jinja2 templates (see [flows.md](flows.md)).",
        "",
    ]
    for node in node_types_catalog():
        ports = ", ".join(f"`{p}`" for p in node["ports"])
        if node.get("ports_from_config"):
            hint = node["ports_from_config"]
            ports = f"{ports} ({hint})" if ports else hint
        ports = ports or "—"
        if node.get("error_port"):
            ports += f", `{node['error_port']}` when it fails"
        lines += [
            f"## `{node['type']}` — {node['title']}",
            "",
            node["description"],
            "",
            f"Ports out: {ports}.",
            "",
        ]
        schema = node["config_schema"]
        props = schema.get("properties", {})
        if props:
            required = set(schema.get("required", []))
            lines += ["| field | type | default | |", "|---|---|---|---|"]
            for name, prop in props.items():
                if name in required:
                    default = "required"
                else:
                    default = f"`{prop['default']!r}`" if "default" in prop else "empty"
                template = " *template*" if prop.get("x-template") else ""
                description = (prop.get("description") or "").replace("|", "\\|")
                lines.append(
                    f"| `{name}` | {_type_name(prop)}{template} | {default} | {description} |"
                )
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run scripts/gen_flow_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
