"""The far ends of scenarios (c)-(e), each in its own process: a fake MySMSGate send API
and a Zapier-like catch hook.

    python -m bench.fakes gateway PORT API_KEY     # POST /api/v1/send, as MySMSGate answers
    python -m bench.fakes hook PORT                # POST /hook (any path), answers 200

They keep only a counter per phone number (the gateway counts the ``to`` of each send, the
hook the ``from`` of each posted SMS), so they cost little next to the hub. ``GET /_stats``
answers the totals and the monotonic time of the last recorded request (CLOCK_MONOTONIC is
system-wide, so the driver can compare it with its own clock); ``GET /_counts`` answers
every number with how often it came. The request and answer shapes of MySMSGate's send
API are those of ``tests/fakes/providers.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from typing import Any

from aiohttp import web

REPLY_TEXT = "Welcome! Reply STOP to opt out."


class Recorder:
    """How often each number arrived, requests refused, and when the last one came."""

    def __init__(self) -> None:
        """Nothing recorded yet."""
        self.counts: Counter[str] = Counter()
        self.bad = 0
        self.last_at = 0.0

    def record(self, number: object) -> None:
        """Count one request for ``number``."""
        self.counts[str(number)] += 1
        self.last_at = time.monotonic()

    async def stats(self, _request: web.Request) -> web.Response:
        """Totals, for the driver's polling."""
        total = sum(self.counts.values())
        answer = {
            "received": total,
            "distinct": len(self.counts),
            "bad": self.bad,
            "last_at": self.last_at,
        }
        return web.json_response(answer)

    async def dump(self, _request: web.Request) -> web.Response:
        """Every number and its count, for the final comparison."""
        return web.json_response(dict(self.counts))


def _body(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def gateway_app(api_key: str) -> web.Application:
    """MySMSGate's ``POST /api/v1/send``: Bearer key, JSON ``{to, message, ...}``, 202 + id."""
    recorder = Recorder()
    ids = itertools.count(1)

    async def send(request: web.Request) -> web.Response:
        """Check the key and the fields as MySMSGate does, count ``to``, answer 202."""
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            recorder.bad += 1
            return web.json_response({"success": False, "error": "Invalid API key"}, status=401)
        data = _body(await request.read())
        if not data or not data.get("to") or not data.get("message"):
            recorder.bad += 1
            return web.json_response({"error": "to and message are required"}, status=400)
        if data["message"] != REPLY_TEXT:
            recorder.bad += 1
        recorder.record(data["to"])
        return web.json_response({"id": f"sms_{next(ids)}", "status": "pending"}, status=202)

    return _app(recorder, [web.post("/api/v1/send", send)])


def hook_app() -> web.Application:
    """A catch hook: any POST with a JSON object carrying ``from`` is counted, 200."""
    recorder = Recorder()

    async def catch(request: web.Request) -> web.Response:
        """Count ``from``, answer 200."""
        data = _body(await request.read())
        if not data or not data.get("from"):
            recorder.bad += 1
            return web.json_response({"status": "error"}, status=400)
        recorder.record(data["from"])
        return web.json_response({"status": "success"})

    return _app(recorder, [web.post("/{path:.*}", catch)])


def _app(recorder: Recorder, routes: list[web.RouteDef]) -> web.Application:
    """An aiohttp app with the recorder's routes and ``routes``."""
    app = web.Application()
    app.add_routes(
        [web.get("/_stats", recorder.stats), web.get("/_counts", recorder.dump), *routes]
    )
    return app


def main(argv: list[str]) -> None:
    """Serve one fake on 127.0.0.1 until terminated."""
    role, port = argv[0], int(argv[1])
    app = gateway_app(argv[2]) if role == "gateway" else hook_app()
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main(sys.argv[1:])
