"""Shared fixtures: databases (SQLite file and PostgreSQL), a hub, an API client, factories.

Tests that need PostgreSQL, Redis or Chromium skip with a reason when the service is
missing, and fail instead when ``SMSHUB_REQUIRE_SERVICES=1`` (CI).

``SMSHUB_TEST_CONFIG`` picks the configuration the hub-backed tests run in (``make test``
runs each one in its own pytest process):

- unset: every test; hub-backed ones on SQLite and on PostgreSQL, inline queue;
- ``sqlite``: every test, hub-backed ones on SQLite + the inline queue (``make run``'s
  embedded default);
- ``postgres``: the hub-backed tests (those using ``database_url``) on PostgreSQL + the
  inline queue;
- ``arq``: the hub-backed tests on PostgreSQL + Redis + arq: ``drain`` pushes the job rows
  to Redis and runs them with an arq worker, and the fault tests' ``smshub serve`` only
  accepts and pushes while ``smshub worker`` processes run the jobs.

Tests that touch no database run once, in the unset and ``sqlite`` configurations; a test
pinned to PostgreSQL (``parametrize("database_url", ["postgres"], indirect=True)``) runs
where PostgreSQL is the database, and one that sets up its own processes and Redis says
where it runs with ``@pytest.mark.configs("postgres")``. A test that is about one engine
only says so with ``@pytest.mark.engine("inline")`` (or ``"arq"``) and is skipped, with
that reason, elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings
from litestar import Litestar

from hub.app import build_hub, create_app
from hub.context import Hub
from hub.migrate import upgrade
from hub.models import metadata
from hub.services.apikeys import create_api_key
from hub.services.channels import create_channel
from hub.settings import Settings

REQUIRE_SERVICES = os.environ.get("SMSHUB_REQUIRE_SERVICES") == "1"

# Hypothesis explores freshly on every local run (that is how it finds bugs); in CI
# (SMSHUB_REQUIRE_SERVICES=1) it replays a fixed sequence, so a landing never depends on
# luck. Loaded here, before test modules build their settings objects from it.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if REQUIRE_SERVICES:
    hypothesis_settings.load_profile("ci")
PG_ADMIN_URL = os.environ.get(
    "SMSHUB_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("SMSHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379")

TEST_CONFIG = os.environ.get("SMSHUB_TEST_CONFIG", "")
CONFIGS = {"": ["sqlite", "postgres"], "sqlite": ["sqlite"], "postgres": ["postgres"]}
CONFIGS["arq"] = CONFIGS["postgres"]
if TEST_CONFIG not in CONFIGS:
    raise SystemExit(f"SMSHUB_TEST_CONFIG must be one of {sorted(CONFIGS)}, not {TEST_CONFIG!r}")
#: True when the hub-backed tests run on Redis + arq.
ARQ_CONFIG = TEST_CONFIG == "arq"
#: The Redis database the arq configuration's hubs use (flushed around every test; two
#: arq-configuration runs at once on one machine need different ones).
ARQ_CONFIG_REDIS_DB = int(os.environ.get("SMSHUB_TEST_ARQ_REDIS_DB", "8"))

FIXTURES = Path(__file__).parent / "fixtures"


def service_missing(name: str, reason: str) -> None:
    """Skip (or, under SMSHUB_REQUIRE_SERVICES=1, fail) a test whose service is missing."""
    message = f"{name} unavailable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (SMSHUB_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    """True when something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating every time is slow)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database for this test session, migrated once, dropped at the end."""
    if not port_open("127.0.0.1", 5432):
        service_missing("PostgreSQL", "nothing listens on 127.0.0.1:5432")
    name = f"smshub_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.engine.make_url(PG_ADMIN_URL)

    async def admin_exec(sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host=admin.host, port=admin.port, user=admin.username, database=admin.database
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_pg(url: str) -> None:
    """Empty every table and restart its id sequences. DELETE, children first, not
    TRUNCATE: a test leaves a few rows, and TRUNCATE of 30-odd tables takes ~0.3 s (new
    files for each) where the DELETEs take a millisecond."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        sequences = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'S' AND n.nspname = 'public'"
        )
        statements = [f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables)]
        statements += [f'ALTER SEQUENCE "{r[0]}" RESTART' for r in sequences]
        await conn.execute("; ".join(statements))
    finally:
        await conn.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engine(name): the test is about one queue engine (inline or arq) only"
    )
    config.addinivalue_line(
        "markers",
        "configs(*names): run only in these SMSHUB_TEST_CONFIG configurations (and unset) —"
        " for tests that set up their own processes, Redis and database mode",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Per configuration: drop the tests that touch no database where they already ran
    elsewhere, and skip a test bound to the other queue engine."""
    engine = "arq" if ARQ_CONFIG else "inline"
    kept, dropped = [], []
    for item in items:
        uses_hub = "database_url" in getattr(item, "fixturenames", ())
        pinned = getattr(getattr(item, "callspec", None), "params", {}).get("database_url")
        only = item.get_closest_marker("configs")
        if (
            (TEST_CONFIG in ("postgres", "arq") and not uses_hub)
            or (TEST_CONFIG and pinned and pinned not in CONFIGS[TEST_CONFIG])
            or (TEST_CONFIG and only is not None and TEST_CONFIG not in only.args)
        ):
            dropped.append(item)
            continue
        marker = item.get_closest_marker("engine")
        if marker is not None and uses_hub and marker.args[0] != engine:
            item.add_marker(
                pytest.mark.skip(reason=f"{marker.args[0]} engine only; this run is {engine}")
            )
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=CONFIGS[TEST_CONFIG])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean, migrated database: each integration test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "smshub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        asyncio.run(_truncate_pg(url))
        yield url


# --- the hub -----------------------------------------------------------------------------


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test hub: its own var dir and database, no bootstrap, fast polling."""
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "database_url": database_url,
        "secret_key": "test-secret-key",
        "public_url": "http://testserver.local",
        "bootstrap_simulator": False,
        "job_poll_s": 0.05,
        "allow_private_destinations": True,
        # fsync on every commit proves nothing a test checks (a killed process loses
        # nothing in WAL mode either way) and costs the suite minutes; the default stays
        # FULL (tests/integration/test_store.py checks it) and the fault tests' child
        # servers run with it.
        "sqlite_synchronous": "NORMAL",
        # A drain runs due jobs only: the random pause between two sends of a SIM would
        # leave a test's second message for later. The pacing tests turn it on.
        "send_spacing_max_s": 0.0,
    }
    if ARQ_CONFIG:
        values["redis_url"] = arq_config_redis_url()
    values.update(overrides)
    return Settings(**values)


def arq_config_redis_url() -> str:
    """The Redis URL of the arq configuration's hubs."""
    return f"{REDIS_TEST_URL.rstrip('/')}/{ARQ_CONFIG_REDIS_DB}"


async def _flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def empty_redis_db(db: int) -> Iterator[str]:
    """For a fixture (``yield from``): the URL of Redis db ``db`` of the test Redis,
    flushed before and after; skip (or fail, SMSHUB_REQUIRE_SERVICES=1) without Redis."""
    if not port_open("127.0.0.1", 6379):
        service_missing("Redis", "nothing listens on 127.0.0.1:6379")
    url = f"{REDIS_TEST_URL.rstrip('/')}/{db}"
    asyncio.run(_flush_redis(url))
    yield url
    asyncio.run(_flush_redis(url))


@pytest.fixture(autouse=True)
def _arq_config_redis(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the arq configuration, a hub-backed test starts and ends with an empty Redis db."""
    if not (ARQ_CONFIG and "database_url" in request.fixturenames):
        yield
        return
    for _url in empty_redis_db(ARQ_CONFIG_REDIS_DB):
        yield


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change the hub's settings."""
    return {}


@pytest.fixture
async def hub(
    tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]
) -> AsyncIterator[Hub]:
    """A hub on a clean database; jobs run only when the test drains the queue."""
    runtime = build_hub(make_settings(tmp_path, database_url, **settings_overrides))
    yield runtime
    await runtime.close()


#: The apps the ``client`` fixture serves, one per request body limit (the only setting
#: an app is built with; everything else is read from the hub on ``app.state``).
_APPS: dict[int, Litestar] = {}


def shared_app(hub: Hub) -> Litestar:
    """The session's app serving ``hub``: building one takes ~0.3 s (Litestar registers
    some 320 routes), so it is built once and the hub swapped in through ``app.state``."""
    app = _APPS.get(hub.settings.max_body_bytes)
    if app is None:
        app = _APPS[hub.settings.max_body_bytes] = create_app(hub=hub, workers=False)
    app.state.hub = hub
    return app


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashes() -> Iterator[None]:
    """Argon2id with its cheapest parameters: the suite signs in hundreds of times and
    the production cost (64 MiB, ~0.2 s a hash) is for attackers, not for tests. The
    hashes stay real argon2id; each carries its own parameters when verified."""
    from argon2 import PasswordHasher

    from hub.services import users

    production = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    users._hasher = production


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process HTTP client for the hub's app, on the test's own event loop.

    (Litestar's AsyncTestClient runs the app on another loop, which asyncpg refuses.)
    No lifespan runs: no background workers, tests drain the queue themselves.
    """
    app = shared_app(hub)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
        yield http


@pytest.fixture
async def api_headers(hub: Hub) -> dict[str, str]:
    """Authorization headers with a fresh API key."""
    _row, key = await create_api_key(hub, "tests")
    return {"Authorization": f"Bearer {key}"}


ChannelFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
def make_channel(hub: Hub) -> ChannelFactory:
    """Create a channel: ``await make_channel("simulator", config={...}, webhook_secret=...)``."""

    async def factory(connector: str = "simulator", **kwargs: Any) -> Any:
        kwargs.setdefault("name", f"{connector} test")
        kwargs.setdefault("config", {})
        return await create_channel(hub, connector=connector, **kwargs)

    return factory


async def drain(hub: Hub, timeout: float = 20.0) -> None:
    """Run every due job until the queue is idle."""
    await hub.queue.drain(timeout=timeout)  # type: ignore[attr-defined]
