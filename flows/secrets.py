"""Secrets in flows: ``{{ secrets.NAME }}`` in ``http.request``, never the value in a run.

The engine never sees a secret's value. When a node whose type allows secrets
(``NodeSpec.secret_fields``: ``http.request``'s url, headers and body) renders its config,
``{{ secrets.NAME }}`` renders to a *placeholder*, ``[[secrets.NAME:<tag>]]``, and that is
what the step's stored input, the run's outputs and any log line hold. The Effects adapter
that performs the request (the hub's, or :class:`flows.memory.FakeEffects`) looks the
names up right before sending, replaces the placeholders (:meth:`SecretTokens.resolve`),
keeps the result nowhere, and masks any echo of a value in the answer
(:func:`mask_outcome`) before it becomes the step's output.

The tag is an HMAC of the run id and the name under the adapter's key, so a placeholder
is good in its own run only and cannot be forged: an SMS or webhook body that contains
``[[secrets.X:…]]`` text reaches a request as that text, never as the secret. A step
resumed after a crash, a retry or a ``replay(from_failed)`` sends the saved input of the
same run again: its placeholders still resolve, to the values current at that moment.

Decisions:

* Names are like environment variables: ``[A-Z][A-Z0-9_]*``, at most 64 characters.
* A secret is inserted as it is, where the template puts it, so ``{{ secrets.NAME }}``
  must stand alone in its ``{{ }}``: a filter, an operator or a ``{% %}`` tag would act on
  the placeholder, not the value. :func:`secret_problems` reports anything else at
  publish, and any use in a field that does not allow secrets (``sms.send`` text…: there
  ``secrets`` is not defined and renders empty).
* A name no secret has fails the step when the request is made (never retried; the
  node's ``error`` port), with the name in the message: a secret may be added after the
  flow is published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Collection, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from jinja2 import nodes

from flows.ports import EffectError, HttpCommand, HttpOutcome
from flows.template_sandbox import SandboxEnvironment

__all__ = [
    "SECRET_MASK",
    "SECRET_NAME",
    "SECRET_NAME_RULE",
    "SecretRefs",
    "SecretTokens",
    "UnknownSecretError",
    "mask_outcome",
    "mask_text",
    "secret_problems",
]

#: What a secret's name must match (the whole name).
SECRET_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
#: The rule in words (API errors and validation problems).
SECRET_NAME_RULE = "A-Z, 0-9 and _, starting with a letter, at most 64 characters (ZAP_TOKEN)"
#: What a value is replaced with wherever it would be shown.
SECRET_MASK = "********"
_PLACEHOLDER = re.compile(r"\[\[secrets\.([A-Z][A-Z0-9_]{0,63}):([0-9a-f]{16})\]\]")
_PARSER = SandboxEnvironment()


class UnknownSecretError(EffectError):
    """A step's request names a secret that is not set (never retried)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"secret {name!r} is not set (add it under Settings → Secrets)", retryable=False
        )
        self.name = name


class SecretRefs(Mapping[str, str]):
    """The ``secrets`` a template sees: every well-formed name gives its placeholder in
    this run (which names exist is known only when the request is made)."""

    __slots__ = ("_run_id", "_tokens")

    def __init__(self, tokens: SecretTokens, run_id: str) -> None:
        self._tokens = tokens
        self._run_id = run_id

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str) or SECRET_NAME.fullmatch(name) is None:
            raise KeyError(name)
        return self._tokens.placeholder(self._run_id, name)

    def __iter__(self) -> Iterator[str]:
        return iter(())  # the names are not the engine's to list

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "secrets"


class SecretTokens:
    """Placeholders of secrets under one key: made by the engine, resolved by Effects."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def placeholder(self, run_id: str, name: str) -> str:
        """What ``{{ secrets.NAME }}`` renders to in run ``run_id``."""
        return f"[[secrets.{name}:{self._tag(run_id, name)}]]"

    def refs(self, run_id: str) -> SecretRefs:
        """The ``secrets`` of run ``run_id``'s templates."""
        return SecretRefs(self, run_id)

    def names(self, command: HttpCommand) -> set[str]:
        """The secrets a request names (by placeholders valid in its run)."""
        found: set[str] = set()
        for text in _strings((command.url, command.headers, command.json, command.content)):
            for match in _PLACEHOLDER.finditer(text):
                if self._valid(command.run_id, match):
                    found.add(match.group(1))
        return found

    def resolve(
        self, command: HttpCommand, secrets: Mapping[str, str]
    ) -> tuple[HttpCommand, list[str]]:
        """The request to send, its placeholders replaced by the values in ``secrets``, and
        the values it used (to mask in the answer). UnknownSecretError for a missing name."""
        used: dict[str, str] = {}

        def value_of(match: re.Match[str]) -> str:
            name = match.group(1)
            if not self._valid(command.run_id, match):
                return match.group(0)  # not this run's: text like any other
            if name not in secrets:
                raise UnknownSecretError(name)
            used[name] = secrets[name]
            return secrets[name]

        def swap(value: Any) -> Any:
            if isinstance(value, str):
                return _PLACEHOLDER.sub(value_of, value) if "[[secrets." in value else value
            if isinstance(value, Mapping):
                return {swap(str(k)): swap(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [swap(item) for item in value]
            return value

        sent = dataclasses.replace(
            command,
            url=swap(command.url),
            headers=swap(dict(command.headers)),
            json=swap(command.json),
            content=swap(command.content),
        )
        return sent, list(used.values())

    def _tag(self, run_id: str, name: str) -> str:
        message = f"{run_id}\x00{name}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]

    def _valid(self, run_id: str, match: re.Match[str]) -> bool:
        return hmac.compare_digest(match.group(2), self._tag(run_id, match.group(1)))


def mask_text(text: str, values: Collection[str]) -> str:
    """``text`` with every value (also JSON-escaped or URL-encoded) as ``********``."""
    forms = {form for value in values if value for form in _forms(value)}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, SECRET_MASK)
    return text


def mask_outcome(outcome: HttpOutcome, values: Collection[str]) -> HttpOutcome:
    """The answer with every echo of the values masked (body, headers, error)."""
    if not values:
        return outcome
    return dataclasses.replace(
        outcome,
        body=mask_text(outcome.body, values),
        headers={mask_text(k, values): mask_text(v, values) for k, v in outcome.headers.items()},
        error=mask_text(outcome.error, values) if outcome.error else outcome.error,
    )


def secret_problems(source: str, *, allowed: bool) -> str | None:
    """What is wrong with the ``secrets`` in a template (None: nothing, or no secrets).
    ``allowed``: the field may use secrets at all."""
    if "secrets" not in source:
        return None
    try:
        tree = _PARSER.parse(source)
    except Exception:
        return None  # the syntax check reports it
    uses = [n for n in tree.find_all(nodes.Name) if _is_secrets(n)]
    if not uses:
        return None
    if not allowed:
        return "secrets can be used only in http.request url, headers and body"
    alone = [
        item
        for output in tree.find_all(nodes.Output)
        for item in output.nodes
        if isinstance(item, nodes.Getattr) and _is_secrets(item.node)
    ]
    for item in alone:
        if SECRET_NAME.fullmatch(item.attr) is None:
            return f"secret name {item.attr!r}: use {SECRET_NAME_RULE}"
    if len(alone) < len(uses):
        return (
            "write {{ secrets.NAME }} on its own: a filter, an operator or a {% %} tag "
            "would see a placeholder, not the secret"
        )
    return None


def _is_secrets(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "secrets" and node.ctx == "load"


def _forms(value: str) -> set[str]:
    """How a value may come back in an answer: as it is, JSON-escaped, URL-encoded."""
    return {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
