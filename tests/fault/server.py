"""A real ``smshub serve`` in a child process, for tests that kill it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from tests.conftest import ARQ_CONFIG, arq_config_redis_url, free_port


class Server:
    """``smshub serve`` in a child process, on its own port, killable with SIGKILL.

    In the arq test configuration (``SMSHUB_TEST_CONFIG=arq``) a server on PostgreSQL
    that was not given a Redis URL gets the configuration's, and a ``smshub worker``
    process beside it that runs the jobs (``serve`` with Redis only accepts and pushes);
    the two start, die and restart together, as one supervised unit would."""

    #: The CLI sub-command this process runs.
    command = "serve"

    def __init__(self, tmp_path: Path, database_url: str, **env: str) -> None:
        self.companion: WorkerProcess | None = None
        if (
            ARQ_CONFIG
            and self.command == "serve"
            and database_url.startswith("postgresql")
            and "SMSHUB_REDIS_URL" not in env
        ):
            env["SMSHUB_REDIS_URL"] = arq_config_redis_url()
            if env.get("SMSHUB_WORKERS") != "0":
                self.companion = WorkerProcess(tmp_path, database_url, **env)
        self.port = free_port()
        self.env = {
            **os.environ,
            "SMSHUB_VAR_DIR": str(tmp_path / "var"),
            "SMSHUB_DATABASE_URL": database_url,
            "SMSHUB_SECRET_KEY": "test-secret-key",
            "SMSHUB_PORT": str(self.port),
            "SMSHUB_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "SMSHUB_BOOTSTRAP_SIMULATOR": "false",
            "SMSHUB_JOB_POLL_S": "0.1",
            **env,
        }
        self.log = tmp_path / f"{self.command}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Server:
        self.spawn()
        return await self.wait_healthy()

    def spawn(self) -> None:
        """Start the child process (and its worker, in the arq configuration)."""
        if self.companion is not None:
            self.companion.spawn()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", self.command],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes its children too
            )

    async def wait_healthy(self) -> Server:
        """Wait until /healthz answers."""
        assert self.proc is not None
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the process and its children: no shutdown hooks, no flushing."""
        if self.companion is not None:
            self.companion.kill()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Poll ``predicate`` until it holds (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


class WorkerProcess(Server):
    """``smshub worker`` (arq) in a child process; it answers no HTTP."""

    command = "worker"

    async def start(self) -> Server:
        self.spawn()
        await asyncio.sleep(0.5)
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        return self
