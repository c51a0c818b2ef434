"""Several processes starting at once against a fresh PostgreSQL database each run the
migrations: one migrates, the others wait on the advisory lock and find nothing to do."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, port_open, service_missing

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def _admin(sql: str) -> None:
    import asyncpg

    url = sa.engine.make_url(PG_ADMIN_URL)
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _version(url: str) -> list[str]:
    import asyncpg

    parts = sa.engine.make_url(url)
    conn = await asyncpg.connect(
        host=parts.host, port=parts.port, user=parts.username, database=parts.database
    )
    try:
        return [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await conn.close()


def test_three_processes_upgrading_at_once_all_succeed(tmp_path: Path) -> None:
    if not port_open("127.0.0.1", 5432):
        service_missing("PostgreSQL", "nothing listens on 127.0.0.1:5432")
    name = f"smshub_migrate_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    try:
        env = {
            **os.environ,
            "SMSHUB_DATABASE_URL": url,
            "SMSHUB_SECRET_KEY": "k",
            "SMSHUB_VAR_DIR": str(tmp_path),
        }
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outputs)
        from hub.migrate import head_revision

        assert asyncio.run(_version(url)) == [head_revision()]
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
