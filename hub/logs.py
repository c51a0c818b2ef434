"""Logging: one format for every logger of a process (ours, uvicorn, arq, alembic), and
the ids of what is being worked on (:func:`log_context`) on every line.

``SMSHUB_LOG_FORMAT=text`` (the default) writes ``time level logger: message`` with the
ids appended as ``key=value``; ``json`` writes one JSON object per line: ``ts``, ``level``,
``logger``, ``msg``, the ids known (``event_id``, ``run_id``, ``message_id``,
``delivery_id``, ``job``, ``channel_id``), and ``exc`` with the traceback. The CLI
configures it once per process (:func:`configure_logging`); ``smshub serve`` hands the
same configuration to uvicorn (:func:`logging_config`), whose worker processes apply it
again.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from hub.settings import Settings

__all__ = [
    "JsonFormatter",
    "StderrHandler",
    "TextFormatter",
    "configure_logging",
    "current_ids",
    "job_ids",
    "log_context",
    "logging_config",
]

#: Job arguments that name what a job works on, carried into its log lines.
ID_ARGS = ("event_id", "run_id", "message_id", "delivery_id")

_IDS: ContextVar[Mapping[str, str]] = ContextVar("smshub_log_ids", default=MappingProxyType({}))

#: Loggers that configure themselves unless told otherwise: they log through the root's
#: handler instead (uvicorn's default config gives them their own handlers and format).
_PROPAGATING = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "alembic")


@contextmanager
def log_context(**ids: object) -> Iterator[None]:
    """Add ``ids`` (None values skipped) to every log line written inside the block,
    in this task and the tasks it starts."""
    added = {key: str(value) for key, value in ids.items() if value is not None}
    token = _IDS.set({**_IDS.get(), **added})
    try:
        yield
    finally:
        _IDS.reset(token)


def current_ids() -> Mapping[str, str]:
    """The ids log lines written here carry."""
    return _IDS.get()


def job_ids(name: str, args: Mapping[str, Any]) -> dict[str, object]:
    """The log ids of a job: its name and the ids among its arguments."""
    ids: dict[str, object] = {"job": name}
    ids.update({key: args[key] for key in ID_ARGS if isinstance(args.get(key), str)})
    return ids


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the context's ids, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_IDS.get(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value…`` (the ids of the context appended)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line before any traceback, with the ids."""
        text = super().formatMessage(record)
        ids = _IDS.get()
        if ids:
            text += " " + " ".join(f"{key}={value}" for key, value in ids.items())
        return text


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (as logging's last
    resort does), not the stream of the moment it was configured: the CLI runs in-process
    in tests, whose captured stderr is closed afterwards."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a hub process (also uvicorn's ``log_config``)."""
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"smshub": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": {"class": f"{__name__}.StderrHandler", "formatter": "smshub"}},
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"handlers": [], "propagate": True} for name in _PROPAGATING},
    }


def configure_logging(settings: Settings) -> None:
    """Log every logger of this process in the configured format, to stderr."""
    logging.config.dictConfig(logging_config(settings))
