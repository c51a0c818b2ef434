"""The one place outbound HTTP on hot paths goes through (gateway sends, webhook deliveries).

aiohttp was measured ~30x faster than httpx on a flow-like workload here (shared client,
64-connection pool, thousands of pending requests; see ``bench/README.md``), so the hub
uses it behind this small module; swapping the library means rewriting only this file.

Two pools, on purpose:

* :meth:`AiohttpClient.request` serves the connectors: provider APIs at base URLs the
  *operator* configured (a gateway on the LAN is normal there), so no SSRF guard.
* :meth:`AiohttpClient.guarded_request` serves URLs a *user* typed (webhook endpoints,
  the flow node ``http.request``). Its connector resolves names through a
  :class:`GuardedResolver`, which checks every address and hands aiohttp only checked
  ones, so the connection goes to exactly what was checked (no DNS rebinding window).
  It is a separate connector because a shared one would share its DNS cache and
  keep-alive connections: a guarded request could then reuse an unchecked resolution.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from connectors.base import HttpResponse

#: Connections kept open per process (all hosts together).
POOL_SIZE = 64
#: Connections kept open to one host.
POOL_SIZE_PER_HOST = 16
#: Response bodies larger than this are cut (we never need more from a provider).
MAX_RESPONSE_BYTES = 1024 * 1024
#: Seconds the guarded pool trusts a checked DNS answer (short: records may change).
GUARDED_DNS_TTL_S = 10


class AddressGuard(Protocol):
    """Judges one resolved address of a host; hashable (one guarded pool per guard)."""

    def __hash__(self) -> int: ...

    def check_address(self, host: str, address: str) -> str | None:
        """Why ``host`` may not be reached at ``address``; None to allow."""


class DestinationRefused(OSError):
    """The guard refused every way to reach a host; the message says which address and why."""


class GuardedResolver(AbstractResolver):
    """Wraps a real resolver and refuses a host when any of its addresses is not allowed.

    aiohttp connects only to addresses this returns, so what is checked is what is used.
    Refusing the whole answer (rather than dropping the bad addresses) is deliberate: a
    public name that also resolves to 127.0.0.1 is an attack, not a configuration.
    """

    def __init__(self, inner: AbstractResolver, guard: AddressGuard) -> None:
        self._inner = inner
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve with the inner resolver, then check every address."""
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            reason = self._guard.check_address(host, answer["host"])
            if reason is not None:
                raise DestinationRefused(f"{host} resolves to {reason} (SSRF guard)")
        if not answers:
            raise OSError(f"{host} has no address")
        return answers

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


class AiohttpClient:
    """A pooled keep-alive client implementing :class:`connectors.base.HttpClient`."""

    def __init__(
        self,
        *,
        connector: aiohttp.BaseConnector | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        resolver_factory: Callable[[], AbstractResolver] | None = None,
    ) -> None:
        self._connector = connector
        self._session: aiohttp.ClientSession | None = None
        self._max_response_bytes = max_response_bytes
        #: Builds the real resolver under each guard; tests swap in a scripted one.
        self.resolver_factory: Callable[[], AbstractResolver] = resolver_factory or DefaultResolver
        self._guarded: dict[Hashable, tuple[aiohttp.ClientSession, GuardedResolver]] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = self._connector or aiohttp.TCPConnector(
                limit=POOL_SIZE, limit_per_host=POOL_SIZE_PER_HOST, ttl_dns_cache=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                connector_owner=True,
                auto_decompress=True,
                raise_for_status=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # gateways' cookies are not ours to keep
                json_serialize=_json_text,
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | bytes | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 15.0,
    ) -> HttpResponse:
        """Send one request and read at most ``max_response_bytes`` of the answer."""
        session = self._get_session()
        all_headers = dict(headers or {})
        if basic_auth:
            all_headers["Authorization"] = aiohttp.encode_basic_auth(*basic_auth)
        try:
            async with session.request(
                method,
                url,
                headers=all_headers,
                json=json,
                data=data if not isinstance(data, Mapping) else dict(data),
                allow_redirects=False,
                timeout=_timeout(timeout),
            ) as resp:
                body = await _read_at_most(resp, self._max_response_bytes)
                return HttpResponse(
                    status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body,
                )
        except aiohttp.ClientError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise TimeoutError(f"no answer from {url} within {timeout:g}s") from exc

    # --- user URLs, behind the SSRF guard ----------------------------------------------

    def _guarded_pool(self, guard: AddressGuard) -> tuple[aiohttp.ClientSession, GuardedResolver]:
        pool = self._guarded.get(guard)
        if pool is None or pool[0].closed:
            resolver = GuardedResolver(self.resolver_factory(), guard)
            connector = aiohttp.TCPConnector(
                limit=POOL_SIZE,
                limit_per_host=POOL_SIZE_PER_HOST,
                ttl_dns_cache=GUARDED_DNS_TTL_S,
                resolver=resolver,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                connector_owner=True,
                auto_decompress=True,
                raise_for_status=False,
                trust_env=False,  # an environment proxy would connect where we did not check
                cookie_jar=aiohttp.DummyCookieJar(),  # one user URL must not set another's
            )
            pool = (session, resolver)
            self._guarded[guard] = pool
        return pool

    async def resolve_checked(self, host: str, port: int, guard: AddressGuard) -> list[str]:
        """The addresses of ``host`` if the guard allows them all (DestinationRefused if not)."""
        _session, resolver = self._guarded_pool(guard)
        answers = await resolver.resolve(host, port, socket.AF_UNSPEC)
        return [answer["host"] for answer in answers]

    async def guarded_request(
        self,
        method: str,
        url: str,
        *,
        guard: AddressGuard,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout: float = 15.0,
        max_body: int = MAX_RESPONSE_BYTES,
    ) -> tuple[HttpResponse, bool]:
        """Send one request to a user URL; (response, body_was_cut). Redirects are not followed.

        Raises DestinationRefused (guard), OSError (network) or TimeoutError.
        """
        host = URL(url).raw_host or ""
        _check_literal(host, guard)
        session, _resolver = self._guarded_pool(guard)
        try:
            async with session.request(
                method,
                url,
                headers=dict(headers or {}),
                data=content,
                allow_redirects=False,
                timeout=_timeout(timeout),
            ) as resp:
                body = await _read_at_most(resp, max_body + 1)
                return (
                    HttpResponse(
                        status=resp.status,
                        headers={k.lower(): v for k, v in resp.headers.items()},
                        body=body[:max_body],
                    ),
                    len(body) > max_body,
                )
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, DestinationRefused):
                raise exc.os_error from None
            raise OSError(f"cannot connect: {exc.os_error or exc}") from exc
        except aiohttp.ClientError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {timeout:g} s") from exc

    async def close(self) -> None:
        """Close the pooled connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        for session, _resolver in self._guarded.values():
            if not session.closed:
                await session.close()
        self._guarded.clear()


def _check_literal(host: str, guard: AddressGuard) -> None:
    """aiohttp connects to IP literals without asking the resolver, so check them here."""
    reason = _literal_refusal(host, guard)
    if reason is not None:
        raise DestinationRefused(f"{reason} (SSRF guard)")


@functools.lru_cache(maxsize=4096)
def _literal_refusal(host: str, guard: AddressGuard) -> str | None:
    """Why the guard refuses ``host`` if it is an IP literal (None: allowed or a name).
    Kept: parsing the same few hosts on every request is measurable on the hot path."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return guard.check_address(host, str(address))


@functools.lru_cache(maxsize=64)
def _timeout(total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)


def _json_text(value: Any) -> str:
    return _ENCODER.encode(value).decode()


_ENCODER = msgspec.json.Encoder()


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body (``read(n)`` alone may stop at the first chunk)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
