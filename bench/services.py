"""PostgreSQL and Redis for scenario (d): a fresh database and a flushed Redis db per run.

PostgreSQL must already run on 127.0.0.1 with trust auth for ``postgres`` (as in
development and CI; ``.ci/run`` starts it). Redis is used at ``--redis-url`` (default db
14 of 127.0.0.1:6379, flushed before and after); if nothing answers there and
``redis-server`` is installed, a private one is started on a free port for the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import procs

DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# --- PostgreSQL --------------------------------------------------------------------------


async def _pg(admin_dsn: str, statement: str) -> str:
    """Run one statement on the admin connection; its first value as text."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        return str(await conn.fetchval(statement) or "")
    finally:
        await conn.close()


def pg_problem(admin_dsn: str) -> str:
    """Why PostgreSQL cannot be used ("" when it can)."""
    parts = urlsplit(admin_dsn)
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 5432):
        return f"PostgreSQL does not answer at {parts.hostname}:{parts.port or 5432}"
    try:
        asyncio.run(_pg(admin_dsn, "SELECT 1"))
    except Exception as exc:  # any connection problem makes the scenario a skip
        return f"PostgreSQL refused {admin_dsn}: {exc}"
    return ""


def pg_version(admin_dsn: str) -> str:
    """The server's ``server_version``."""
    return asyncio.run(_pg(admin_dsn, "SHOW server_version"))


@dataclass
class PgDatabase:
    """A database created for one scenario and dropped after it."""

    admin_dsn: str
    name: str

    @classmethod
    def create(cls, admin_dsn: str) -> PgDatabase:
        """CREATE DATABASE smshub_bench_<pid>_<time>."""
        name = f"smshub_bench_{os.getpid()}_{int(time.time())}"
        asyncio.run(_pg(admin_dsn, f'CREATE DATABASE "{name}"'))
        return cls(admin_dsn, name)

    @property
    def url(self) -> str:
        """The hub's SQLAlchemy URL for it."""
        parts = urlsplit(self.admin_dsn)
        return urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{self.name}"))

    def drop(self) -> None:
        """DROP DATABASE ... WITH (FORCE)."""
        asyncio.run(_pg(self.admin_dsn, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


# --- Redis -------------------------------------------------------------------------------


@dataclass
class RedisDb:
    """A Redis database number the benchmark may flush, and the private server if any."""

    url: str
    server: procs.Child | None = None

    def flush(self) -> None:
        """FLUSHDB."""
        from redis import Redis

        client = Redis.from_url(self.url, socket_timeout=10)
        try:
            client.flushdb()
        finally:
            client.close()

    def version(self) -> str:
        """The server's ``redis_version``."""
        from redis import Redis

        client = Redis.from_url(self.url, socket_timeout=10)
        try:
            return str(client.info("server").get("redis_version", "?"))
        finally:
            client.close()

    def close(self) -> None:
        """Flush, and stop the private server if this run started one."""
        try:
            self.flush()
        finally:
            if self.server is not None:
                self.server.stop()


def open_redis(url: str, workdir: Path) -> RedisDb:
    """The Redis at ``url``, or a private ``redis-server`` when nothing answers there."""
    parts = urlsplit(url)
    if port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        return RedisDb(url)
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(f"Redis does not answer at {url} and redis-server is not installed")
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    server = procs.spawn("redis-server", argv, log=workdir / "redis.log")
    if not procs.wait_until(lambda: port_open("127.0.0.1", port), 15):
        server.stop()
        raise RuntimeError("the private redis-server did not start")
    return RedisDb(f"redis://127.0.0.1:{port}/0", server)
