"""Ingest throughput: signed gateway webhooks into ``smshub serve`` vs a bare Litestar handler.

    .venv/bin/python -m bench.ingest [--seconds 10] [--concurrency 32] [--database-url URL]

Starts each server in a child process on a free port (the hub on a fresh SQLite file,
or on ``--database-url``), drives it with a pooled aiohttp client for a fixed time, and
prints requests per second. Every request is a distinct, correctly signed simulator
webhook (distinct event ids: no dedupe shortcut), so each one is a real ingest: verify,
parse, one write transaction, 200. The bare handler reads the body and answers 200.
Bounded in time; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).parents[1]
SECRET = "bench-simulator-secret"

BARE_APP = textwrap.dedent(
    """
    from litestar import Litestar, Request, post

    @post("/webhooks/{channel_id:str}", status_code=200)
    async def hook(request: Request, channel_id: str) -> dict:
        await request.body()
        return {"ok": True}

    app = Litestar([hook])
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def drive(url: str, bodies: list[bytes], seconds: float, concurrency: int) -> tuple[int, int]:
    """Post as fast as the server answers for ``seconds``; (ok, errors)."""
    from connectors.simulator import sign_request

    ok = errors = 0
    counter = iter(range(10**9))
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, errors
            while time.monotonic() < deadline:
                body = bodies[next(counter) % len(bodies)].replace(
                    b"__N__", str(next(counter)).encode()
                )
                headers = {
                    "content-type": "application/json",
                    **sign_request(SECRET, body, datetime.now(UTC)),
                }
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, errors


async def run_hub(args: argparse.Namespace, workdir: Path) -> float:
    """Requests per second into the hub."""
    port = free_port()
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    env = {
        **os.environ,
        "SMSHUB_VAR_DIR": str(workdir / "var"),
        "SMSHUB_DATABASE_URL": database_url,
        "SMSHUB_SECRET_KEY": "bench",
        "SMSHUB_PORT": str(port),
        "SMSHUB_BOOTSTRAP_SIMULATOR": "false",
        "SMSHUB_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "hub.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    channel_id = await _make_channel(env)
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, cwd=ROOT)
    try:
        await wait_up(f"http://127.0.0.1:{port}/healthz", proc)
        return await _measure(f"http://127.0.0.1:{port}/webhooks/{channel_id}", args)
    finally:
        proc.terminate()
        proc.wait(10)


async def _make_channel(env: dict[str, str]) -> str:
    code = textwrap.dedent(
        f"""
        import asyncio
        from hub.app import build_hub
        from hub.settings import get_settings
        from hub.services.channels import create_channel

        async def main():
            hub = build_hub(get_settings())
            row = await create_channel(hub, connector="simulator", name="bench", config={{}},
                                       webhook_secret={SECRET!r})
            print(row.id)
            await hub.http.close(); await hub.db.dispose()

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


async def run_bare(args: argparse.Namespace, workdir: Path) -> float:
    """Requests per second into a bare Litestar handler (same uvicorn, same machine)."""
    port = free_port()
    (workdir / "bare_app.py").write_text(BARE_APP)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=workdir,
    )
    try:
        await wait_up(f"http://127.0.0.1:{port}/docs", proc)
        return await _measure(f"http://127.0.0.1:{port}/webhooks/ch_bare", args)
    finally:
        proc.terminate()
        proc.wait(10)


async def _measure(url: str, args: argparse.Namespace) -> float:
    bodies = [
        json.dumps(
            {
                "event": "sms.received",
                "id": "bench-__N__",
                "from": f"+1555000{i:04d}",
                "to": "+15550100000",
                "text": "JOIN news",
                "device_id": "phone-1",
                "sim_slot": 0,
            }
        ).encode()
        for i in range(200)
    ]
    await drive(url, bodies, 1.0, args.concurrency)  # warm-up
    started = time.monotonic()
    ok, errors = await drive(url, bodies, args.seconds, args.concurrency)
    rate = ok / (time.monotonic() - started)
    print(f"  {url.split('/webhooks')[0]}: {ok} ok, {errors} errors, {rate:,.0f} req/s", flush=True)
    return rate


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print("bare Litestar handler:")
        bare = await run_bare(args, workdir)
        print("smshub ingest:")
        hub = await run_hub(args, workdir)
    print(f"ingest / bare = {hub / bare:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
