"""A webhook receiver on 127.0.0.1 that records every request and answers as scripted.

    async with Sink() as sink:
        sink.script(500, 500, 200)          # then the default (200) for the rest
        sink.always(Reply(429, headers={"Retry-After": "1"}))
        sink.always(Reply(200, delay_s=3))   # a slow endpoint
        sink.always(Reply(hang=True))        # never answers (until closed)
        ...
        assert sink.ids() == [...]           # webhook-id of every request, in order

:class:`ConnectionProbe` is a bare TCP listener that only counts connections: the SSRF
tests point a guarded request at it and prove that nothing ever connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    #: Seconds to sleep before answering (a slow endpoint).
    delay_s: float = 0.0
    #: Never answer (until the sink closes).
    hang: bool = False


@dataclass(frozen=True)
class Received:
    """One request as the sink saw it."""

    method: str
    path: str
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes
    #: time.monotonic() on arrival.
    at: float
    #: The status the sink answered (None while hanging).
    status: int | None
    #: The query string, without the ``?``.
    query: str = ""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        """The ``webhook-id`` header."""
        return self.headers.get("webhook-id", "")


class Sink(LocalServer):
    """A scriptable webhook receiver on a free port of 127.0.0.1."""

    def __init__(self, path: str = "/hook") -> None:
        super().__init__()
        self.path = path
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._default = Reply()
        self._arrived = asyncio.Event()

    @property
    def url(self) -> str:
        """The URL to subscribe."""
        return f"http://127.0.0.1:{self.port}{self.path}"

    # --- lifecycle ------------------------------------------------------------------------

    # --- scripting ------------------------------------------------------------------------

    def script(self, *replies: int | Reply) -> None:
        """Answer the next requests with these, then with the default."""
        self._script.extend(_reply(r) for r in replies)

    def always(self, reply: int | Reply) -> None:
        """Answer every request after the script with ``reply``."""
        self._default = _reply(reply)

    # --- reading --------------------------------------------------------------------------

    def ids(self, *, status: int | None = None) -> list[str]:
        """``webhook-id`` of every request (answered with ``status``, if given), in order."""
        return [r.webhook_id for r in self.requests if status is None or r.status == status]

    def succeeded_ids(self) -> list[str]:
        """``webhook-id`` of every request answered 2xx."""
        return [r.webhook_id for r in self.requests if r.status and 200 <= r.status < 300]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` requests arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"sink got {len(self.requests)} of {count} requests")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.2))

    # --- serving --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        reply = self._script.popleft() if self._script else self._default
        self.requests.append(
            Received(
                method=request.method,
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                at=time.monotonic(),
                status=None if reply.hang else reply.status,
                query=request.query_string,
            )
        )
        self._arrived.set()
        if reply.hang:
            await self._release.wait()
            return web.Response(status=599)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)


def _reply(value: int | Reply) -> Reply:
    return value if isinstance(value, Reply) else Reply(status=value)


class ConnectionProbe:
    """A TCP listener on 127.0.0.1 that counts connections and closes them."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ConnectionProbe:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, every: float = 0.05
) -> None:
    """Poll ``condition`` (sync or async) until it is true; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition still false after {timeout:g}s")
        await asyncio.sleep(every)
