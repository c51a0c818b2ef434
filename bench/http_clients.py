"""aiohttp vs httpx on a webhook-delivery-like workload.

One shared client with a 64-connection keep-alive pool POSTs signed-size JSON bodies
(~450 bytes, like an ``sms.received`` delivery) to a local aiohttp server running in its
own process. Two shapes:

* ``burst``: all N requests are started at once, so thousands wait for a pooled
  connection (what a queue of deliveries or a flow fan-out produces);
* ``window``: at most 64 requests in flight (a semaphore in front of the pool).

A third row runs the hub's own path for user URLs (``AiohttpClient.guarded_request``,
SSRF checks included). Each run is bounded (``--max-seconds``); a client that does not
finish is reported with what it completed. Usage::

    .venv/bin/python bench/http_clients.py                 # 5,000 requests, 3 rounds
    .venv/bin/python bench/http_clients.py -n 20000 --rounds 5 --delay-ms 5
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
from aiohttp import web

#: Connections in each client's pool (the hub's AiohttpClient uses the same).
POOL = 64
BODY = json.dumps(
    {
        "id": "evt_01jd0000000000000000000000",
        "type": "sms.received",
        "timestamp": "2026-11-26T12:00:00.000Z",
        "data": {
            "message_id": "msg_01jd0000000000000000000000",
            "from": "+15550001234",
            "to": "+15559876543",
            "body": "JOIN news",
            "channel_id": "ch_01jd0000000000000000000000",
            "device_id": "dev_01jd000000000000000000000",
            "sim_slot": 0,
            "segments": 1,
            "encoding": "GSM-7",
            "received_at": "2026-11-26T12:00:00.000Z",
        },
    },
    separators=(",", ":"),
).encode()
HEADERS = {
    "Content-Type": "application/json",
    "webhook-id": "evt_01jd0000000000000000000000",
    "webhook-timestamp": "1795694400",
    "webhook-signature": "v1,PDabBPZWXmTf/rLfgfpnoLa3rLzpA+N4z9e27il+Ong=",
}


# --- the server (its own process, so it does not share the client's event loop) ----------


def _serve(port: int, delay_ms: float, ready: multiprocessing.synchronize.Event) -> None:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the clients ----------------------------------------------------------------------------

Send = Callable[[], Awaitable[None]]


@dataclass
class Result:
    client: str
    shape: str
    done: int
    seconds: float
    finished: bool

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


class Progress:
    """Counters the run's process shares with the parent (which may have to kill it)."""

    def __init__(self, ctx: Any) -> None:
        self.done = ctx.Value("i", 0, lock=False)
        self.seconds = ctx.Value("d", 0.0, lock=False)
        self.started = ctx.Value("d", 0.0, lock=False)


async def _run(send: Send, shape: str, n: int, progress: Progress) -> None:
    gate = asyncio.Semaphore(POOL) if shape == "window" else None

    async def one() -> None:
        if gate is None:
            await send()
        else:
            async with gate:
                await send()
        progress.done.value += 1

    progress.started.value = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    progress.seconds.value = time.perf_counter() - progress.started.value


async def bench_aiohttp(url: str, shape: str, n: int, progress: Progress) -> None:
    connector = aiohttp.TCPConnector(limit=POOL, limit_per_host=POOL)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as resp:
                await resp.read()
                assert resp.status == 200

        await send()  # warm-up: open the first connection outside the timing
        await _run(send, shape, n, progress)


async def bench_hub(url: str, shape: str, n: int, progress: Progress) -> None:
    """The hub's own path for user URLs: AiohttpClient.guarded_request (SSRF guard on)."""
    from hub.delivery.ssrf import Policy
    from hub.http_client import AiohttpClient

    client = AiohttpClient()
    # 127.0.0.1 is refused by the real policy; the allow-list opens it the way an operator
    # would, so every check still runs.
    guard = Policy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),), allow_http=True)

    async def send() -> None:
        resp, _cut = await client.guarded_request(
            "POST", url, guard=guard, headers=HEADERS, content=BODY, max_body=64 * 1024
        )
        assert resp.status == 200

    try:
        await send()
        await _run(send, shape, n, progress)
    finally:
        await client.close()


async def bench_httpx(url: str, shape: str, n: int, progress: Progress) -> None:
    limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    async with httpx.AsyncClient(limits=limits, timeout=None) as client:

        async def send() -> None:
            resp = await client.post(url, content=BODY, headers=HEADERS)
            assert resp.status_code == 200

        await send()
        await _run(send, shape, n, progress)


# --- main -----------------------------------------------------------------------------------

CLIENTS: dict[str, Callable[[str, str, int, Progress], Awaitable[None]]] = {
    "aiohttp": bench_aiohttp,
    "hub (aiohttp, guarded)": bench_hub,
    "httpx": bench_httpx,
}


def _child(name: str, url: str, shape: str, n: int, progress: Progress) -> None:
    asyncio.run(CLIENTS[name](url, shape, n, progress))


def run_once(ctx: Any, name: str, url: str, shape: str, n: int, max_seconds: float) -> Result:
    """One run in its own process, killed at the cap: cancelling thousands of pending
    requests can itself take minutes (httpx), so the bound must not depend on it."""
    progress = Progress(ctx)
    proc = ctx.Process(target=_child, args=(name, url, shape, n, progress), daemon=True)
    proc.start()
    proc.join(max_seconds + 15)  # start-up and warm-up are not timed
    finished = not proc.is_alive() and proc.exitcode == 0 and progress.done.value == n
    if proc.is_alive():
        proc.kill()
        proc.join()
    seconds = (
        progress.seconds.value
        if finished
        else (
            time.perf_counter() - progress.started.value if progress.started.value else max_seconds
        )
    )
    return Result(name, shape, progress.done.value, min(seconds, max_seconds + 15), finished)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=5000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per client and shape")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap per run")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="server think time")
    parser.add_argument("--shape", choices=["burst", "window", "both"], default="both")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, args.delay_ms, ready), daemon=True)
    server.start()
    if not ready.wait(15):
        print("server did not start", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/hook"
    shapes = ["burst", "window"] if args.shape == "both" else [args.shape]
    print(
        f"# {args.requests} POSTs of {len(BODY)} bytes, pool {POOL}, server delay "
        f"{args.delay_ms:g} ms, {args.rounds} rounds; Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, httpx {httpx.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print("| client | shape | best req/s | median req/s | completed | note |")
    print("|---|---|---:|---:|---:|---|", flush=True)
    try:
        for shape in shapes:
            for name in CLIENTS:
                results = [
                    run_once(ctx, name, url, shape, args.requests, args.max_seconds)
                    for _ in range(args.rounds)
                ]
                rates = [r.rate for r in results]
                capped = [r for r in results if not r.finished]
                note = f"{len(capped)} run(s) stopped at the cap" if capped else ""
                print(
                    f"| {name} | {shape} | {max(rates):,.0f} | {statistics.median(rates):,.0f} "
                    f"| {min(r.done for r in results)}/{args.requests} | {note} |",
                    flush=True,
                )
    finally:
        server.terminate()
        server.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
