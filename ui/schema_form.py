"""HTML forms from a connector's config JSON schema, and the posted values back to config.

Covers what connector configs use: strings (secret ones as password inputs), numbers,
integers, booleans, enums and optional (``anyOf [X, null]``) fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ui.pages import FormErrors

#: Prefix of config inputs in a channel form (the channel's own fields have none).
PREFIX = "cfg."
_WORDS = {"api": "API", "url": "URL", "id": "ID", "sid": "SID", "sms": "SMS", "sim": "SIM"}


def humanize(name: str) -> str:
    """``timeout_s`` -> 'Timeout (seconds)', ``api_key`` -> 'API key'."""
    seconds = name.endswith("_s")
    words = (name[:-2] if seconds else name).split("_")
    text = " ".join(_WORDS.get(w, w) for w in words if w)
    text = text[:1].upper() + text[1:]
    return f"{text} (seconds)" if seconds else text


@dataclass
class SchemaField:
    """One input of a generated form."""

    name: str
    label: str
    kind: str  # text / password / number / integer / checkbox / select
    required: bool
    default: Any = None
    description: str = ""
    options: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    nullable: bool = False

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def _plain(prop: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The non-null branch of an optional field, and whether null is allowed."""
    options = prop.get("anyOf")
    if not isinstance(options, list):
        return prop, False
    real = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
    merged = {**prop, **(real[0] if real else {})}
    merged.pop("anyOf", None)
    return merged, len(real) < len(options)


def fields_of(schema: dict[str, Any]) -> list[SchemaField]:
    """The inputs for every property of a config schema, required ones first."""
    required = set(schema.get("required", []))
    found: list[SchemaField] = []
    for name, raw in (schema.get("properties") or {}).items():
        prop, nullable = _plain(raw)
        kind = "text"
        if prop.get("enum"):
            kind = "select"
        elif prop.get("type") == "boolean":
            kind = "checkbox"
        elif prop.get("type") == "integer":
            kind = "integer"
        elif prop.get("type") == "number":
            kind = "number"
        elif raw.get("secret"):
            kind = "password"
        found.append(
            SchemaField(
                name=name,
                label=humanize(name),
                kind=kind,
                required=name in required,
                default=prop.get("default"),
                description=str(raw.get("description") or ""),
                options=[str(o) for o in prop.get("enum") or []],
                minimum=prop.get("minimum", prop.get("exclusiveMinimum")),
                maximum=prop.get("maximum", prop.get("exclusiveMaximum")),
                pattern=prop.get("pattern"),
                nullable=nullable,
            )
        )
    found.sort(key=lambda f: (not f.required, 0))
    return found


def parse_values(
    fields: list[SchemaField], form: dict[str, str], *, keep_blank_secrets: bool = False
) -> tuple[dict[str, Any], FormErrors]:
    """Config values from a posted form; blank optional inputs are left out (defaults
    apply). ``keep_blank_secrets``: a blank secret means "unchanged" (edit forms)."""
    config: dict[str, Any] = {}
    errors = FormErrors()
    for item in fields:
        raw = form.get(item.input_name, "")
        if item.kind == "checkbox":
            config[item.name] = raw in ("on", "true", "1")
            continue
        value = raw.strip() if item.kind != "password" else raw
        if value == "":
            if item.required and not (keep_blank_secrets and item.kind == "password"):
                errors.add(item.input_name, "required")
            continue
        if item.kind in ("number", "integer"):
            try:
                number: float = int(value) if item.kind == "integer" else float(value)
            except ValueError:
                errors.add(
                    item.input_name, f"enter a {'whole ' if item.kind == 'integer' else ''}number"
                )
                continue
            config[item.name] = number
        elif item.kind == "select" and value not in item.options:
            errors.add(item.input_name, "pick one of the listed values")
        else:
            config[item.name] = value
    return config, errors
