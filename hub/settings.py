"""Typed settings, read from the environment (prefix ``SMSHUB_``) in this one place."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from hub.services.keywords import (
    DEFAULT_HELP_WORDS,
    DEFAULT_OPT_IN_WORDS,
    DEFAULT_OPT_OUT_WORDS,
    KeywordTable,
    merged,
)

DEFAULT_RETRY_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"
#: A language as the keyword settings name it: a BCP 47 tag ("es", "pt-BR"), any case.
_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*")
#: Per-language settings: JSON in the environment, parsed by their own validator.
_Words = Annotated[dict[str, list[str]], NoDecode]
_Texts = Annotated[dict[str, str], NoDecode]


class Settings(BaseSettings):
    """Everything an operator can set; each field is ``SMSHUB_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SMSHUB_", extra="ignore")

    var_dir: Path = Path("var")
    """Where the embedded database and the generated secret key live."""
    database_url: str = ""
    """SQLAlchemy async URL; empty means SQLite at ``<var_dir>/smshub.db``."""
    database_pool_size: int = Field(default=10, ge=1, le=500)
    """PostgreSQL: connections the API's and the UI's queries may hold per process (the hot
    path adds its own 5, the trigger index 1); size ``max_connections`` for all processes."""
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """SQLite fsync policy: FULL (default) fsyncs every commit, so an acknowledged webhook
    survives a power cut; NORMAL survives a crash of the process only."""
    redis_url: str = ""
    """Redis URL for the arq queue; empty means the inline (database) queue."""
    secret_key: str = ""
    """Key that encrypts stored secrets; the same in every process on one database (checked
    at start). If empty, ``<var_dir>/secret.key``, generated only for a database without
    secrets."""
    public_url: str = "http://127.0.0.1:8000"
    """Base of the webhook URLs shown to users and used to check Twilio signatures."""
    host: str = "127.0.0.1"
    """Interface ``smshub serve`` binds."""
    port: int = 8000
    """Port ``smshub serve`` binds."""
    processes: int = Field(default=1, ge=1, le=64)
    """Processes ``smshub serve`` runs (each serves HTTP and runs jobs; one per core)."""
    allow_private_destinations: bool = False
    """Turn the SSRF guard off (local tests only)."""
    delivery_retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    """Seconds between webhook delivery attempts, comma-separated."""
    default_region: str = "US"
    """ISO country for phone numbers written without a country code."""
    workers: int = 16
    """Concurrent jobs per process (inline queue and arq workers)."""
    job_lease_s: float = 60.0
    """How long a claimed job is ours before another worker may take it over."""
    job_poll_s: float = 0.5
    """How often idle inline workers look for due jobs."""
    job_repush_after_s: float = Field(default=30.0, gt=0)
    """arq queue: a job row pushed to Redis that is this overdue (or whose lease expired
    this long ago) is pushed again — the sweep that recovers from a Redis restart."""
    send_max_attempts: int = 8
    """Attempts to hand one SMS to a provider before it is marked failed."""
    device_rate_limit_per_min: int = Field(default=20, ge=1)
    """SMS parts one SIM may send in any 60 s, unless its device or the SIM itself has its
    own (``PATCH /api/v1/devices/{id}``; Android itself allows 30 SMS per 30 minutes)."""
    send_spacing_max_s: float = Field(default=1.0, ge=0.0, le=2.0)
    """A random pause of 0 to this many seconds between two sends of one SIM (0 = off)."""
    max_body_bytes: int = 1024 * 1024
    """Largest webhook or API request body accepted (413 beyond)."""
    bootstrap_simulator: bool = True
    """Create a simulator channel on first start when there is no channel."""
    help_text: str = "Reply STOP to opt out, START to opt back in."
    """Answer to HELP / INFO."""
    stop_text: str = (
        "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
    )
    """Confirmation sent once on STOP."""
    start_text: str = "You are subscribed again. Reply STOP to opt out."
    """Confirmation sent once on START."""
    opt_out_words: _Words = Field(default_factory=dict)
    """Opt-out words per language, JSON ``{"es": ["BAJA", ...]}``: a language listed
    replaces its default list (``[]`` drops it), a new one is added (docs/opt-outs.md)."""
    opt_in_words: _Words = Field(default_factory=dict)
    """Opt-in words per language, JSON, like ``opt_out_words``."""
    help_words: _Words = Field(default_factory=dict)
    """Help words per language, JSON, like ``opt_out_words``."""
    stop_texts: _Texts = Field(default_factory=dict)
    """STOP confirmations per language, JSON ``{"es": "..."}``: the contact's language,
    else the keyword's, else ``stop_text`` (docs/opt-outs.md)."""
    start_texts: _Texts = Field(default_factory=dict)
    """START confirmations per language, JSON, like ``stop_texts``."""
    help_texts: _Texts = Field(default_factory=dict)
    """HELP answers per language, JSON, like ``stop_texts``."""
    log_level: str = "INFO"
    """Python logging level."""
    log_format: Literal["text", "json"] = "text"
    """Log lines as text, or as one JSON object per line (every logger, ids included)."""
    metrics_port: int = Field(default=0, ge=0, le=65_535)
    """Port ``smshub worker`` serves /metrics on, at ``host`` (0: no metrics server)."""
    loop_breaker_max: int = 5
    """Automatic (flow) SMS one number may get within the loop-breaker window."""
    loop_breaker_window_s: float = 600.0
    """The loop-breaker window in seconds."""
    flow_step_limit: int = 1000
    """Steps one flow run may take before it is failed (guards loops)."""
    allow_http_destinations: bool = False
    """Let webhook endpoints and flow HTTP requests use plain http:// (addresses still checked)."""
    destination_allowlist: str = ""
    """Networks (CIDR) and host names the SSRF guard lets through, e.g. ``10.0.0.0/8,n8n.lan``."""
    delivery_timeout_s: float = 15.0
    """Seconds one webhook delivery attempt may take."""
    delivery_disable_after_s: float = 5 * 86_400.0
    """An endpoint whose deliveries all failed for this long is disabled (default 5 days)."""
    delivery_secret_overlap_s: float = 86_400.0
    """After a secret rotation, how long the old secret still signs (default 24 h)."""
    delivery_max_in_flight_per_endpoint: int = 8
    """Concurrent delivery attempts to one healthy endpoint (slow ones get 1): across every
    process with Redis, per process without."""
    session_ttl_s: float = 14 * 86_400.0
    """How long a browser sign-in lasts (default 14 days); signing out ends it at once."""
    login_attempts_per_min: int = 5
    """Failed sign-ins allowed per minute for one address and e-mail before 429, counted
    across every process (Redis when configured, else the database)."""
    retain_message_bodies_days: int = Field(default=0, ge=0, le=36_500)
    """Days a message's text is kept (0: forever); older messages keep their metadata
    (numbers, status, times) but their text is cleared, in the message and its events."""
    retain_events_days: int = Field(default=0, ge=0, le=36_500)
    """Days an event row is kept (0: forever); never less than 3 days, the dedupe floor
    that keeps a gateway's late retry a no-op (hub.services.retention)."""
    retain_runs_days: int = Field(default=0, ge=0, le=36_500)
    """Days a finished flow run and its steps are kept after it ended (0: forever)."""
    retain_deliveries_days: int = Field(default=0, ge=0, le=36_500)
    """Days a finished webhook delivery and its attempts are kept after it ended (0: forever)."""
    broadcast_reply_window_h: float = Field(default=168.0, gt=0, le=8_760)
    """Hours after a broadcast's message in which the contact's SMS on that channel counts
    as a reply to it (``replied``, ``trigger.data.broadcast_id``; default 7 days)."""
    concat_wait_s: float = Field(default=60.0, gt=0, le=86_400)
    """Seconds the parts of a long inbound SMS wait for the missing ones (from the first
    part's arrival); then what arrived becomes one message marked incomplete."""
    schedule_missed_grace_s: float = Field(default=300.0, ge=0, le=7 * 86_400)
    """Seconds a ``trigger.schedule`` tick may be late (the hub was down or behind) and
    still start its run; a later one is skipped (never a backlog of missed ticks)."""
    campaign_late_after_s: float = Field(default=3600.0, ge=0, le=30 * 86_400)
    """Seconds after its time a campaign fire may still go out (the hub was down or
    overloaded at its time); later it is skipped with reason ``late``; 0 = always send."""
    device_offline_after_s: float = Field(default=900.0, ge=0, le=30 * 86_400)
    """Seconds without a ping or any other event from a phone after which the hub raises
    ``device.offline`` (and ``device.online`` when it is heard again); 0 = never."""

    @field_validator("delivery_retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator(
        "opt_out_words",
        "opt_in_words",
        "help_words",
        "stop_texts",
        "start_texts",
        "help_texts",
        mode="before",
    )
    @classmethod
    def _parse_json(cls, value: Any, info: ValidationInfo) -> Any:
        return parse_json_setting(value, str(info.field_name))

    @field_validator(
        "opt_out_words", "opt_in_words", "help_words", "stop_texts", "start_texts", "help_texts"
    )
    @classmethod
    def _check_languages(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_languages(value, str(info.field_name))

    @model_validator(mode="after")
    def _check_keywords(self) -> Settings:
        self.keywords  # noqa: B018 -- built (and a word of two kinds refused) at startup
        return self

    @cached_property
    def keywords(self) -> KeywordTable:
        """The compliance keywords: the default words with the configured languages replaced."""
        try:
            return KeywordTable(
                merged(DEFAULT_OPT_OUT_WORDS, self.opt_out_words),
                merged(DEFAULT_OPT_IN_WORDS, self.opt_in_words),
                merged(DEFAULT_HELP_WORDS, self.help_words),
            )
        except ValueError as exc:
            raise ValueError(f"SMSHUB_OPT_OUT_WORDS / OPT_IN_WORDS / HELP_WORDS: {exc}") from exc

    @cached_property
    def retry_schedule(self) -> list[float]:
        """The delivery retry schedule as numbers."""
        return parse_schedule(self.delivery_retry_schedule)

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite under ``var_dir``."""
        return self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'smshub.db'}"

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite."""
        return self.effective_database_url.startswith("sqlite")


def parse_schedule(value: str) -> list[float]:
    """Parse a comma-separated list of non-negative seconds."""
    try:
        items = [float(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"retry schedule must be comma-separated seconds: {value!r}") from exc
    if not items or any(item < 0 for item in items):
        raise ValueError("retry schedule needs at least one non-negative number")
    return items


def parse_json_setting(value: Any, field: str) -> Any:
    """A JSON setting's value: an environment string is parsed (a clear error naming the
    variable if it is not a JSON object); a value given in Python is taken as it is."""
    if not isinstance(value, str | bytes):
        return value
    name = f"SMSHUB_{field.upper()}"
    try:
        parsed = json.loads(value) if value.strip() else {}
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc})") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f'{name} must be a JSON object by language, e.g. {{"es": ...}}')
    return parsed


def check_languages(value: dict[str, Any], field: str) -> dict[str, Any]:
    """A per-language setting with its language tags lower-cased; a tag that is not BCP 47,
    or an empty text, is refused."""
    name = f"SMSHUB_{field.upper()}"
    checked: dict[str, Any] = {}
    for language, item in value.items():
        tag = language.strip().lower()
        if not _LANGUAGE_TAG.fullmatch(tag):
            raise ValueError(f'{name}: {language!r} is not a language tag such as "es" or "pt-BR"')
        if isinstance(item, str) and not item.strip():
            raise ValueError(f"{name}: the text for {language!r} is empty")
        checked[tag] = item
    return checked


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]


__all__ = ["Field", "Settings", "get_settings", "parse_schedule"]
