"""The SSRF guard: which URLs and addresses a user-supplied destination may use.

Two layers, both needed:

* :func:`check_url` looks at the URL itself: http(s) only (plain http only when allowed),
  no credentials, a plain host name or a canonical IP literal. Odd IP spellings
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) are refused outright, because
  aiohttp treats some of them as IP literals and connects without asking any resolver.
* :meth:`Policy.check_address` judges one resolved address. The HTTP client's guarded
  resolver (``hub.http_client.GuardedResolver``) calls it on every address a host name
  resolves to, at connect time, and aiohttp connects only to what passed: there is no
  window between the check and the connection for a DNS rebinding answer to slip into.

``SMSHUB_ALLOW_PRIVATE_DESTINATIONS`` turns the address checks (and the https-only rule)
off; ``SMSHUB_DESTINATION_ALLOWLIST`` opens chosen networks and host names.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from yarl import URL

from hub.settings import Settings

log = logging.getLogger("smshub.ssrf")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

#: IPv4 ranges no user URL may reach, with the reason shown to the user.
BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "'this network' (0.0.0.0/8)"),
    (_V4("10.0.0.0/8"), "private (RFC 1918)"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local (cloud metadata lives here)"),
    (_V4("172.16.0.0/12"), "private (RFC 1918)"),
    (_V4("192.0.0.0/24"), "IETF protocol assignments"),
    (_V4("192.0.2.0/24"), "documentation (TEST-NET-1)"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast"),
    (_V4("192.168.0.0/16"), "private (RFC 1918)"),
    (_V4("198.18.0.0/15"), "benchmarking (RFC 2544)"),
    (_V4("198.51.100.0/24"), "documentation (TEST-NET-2)"),
    (_V4("203.0.113.0/24"), "documentation (TEST-NET-3)"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

#: IPv6 ranges inside global unicast (2000::/3) that are still not reachable destinations.
#: Everything outside 2000::/3 is refused anyway (loopback, ULA, link-local, multicast…),
#: except the forms that embed an IPv4 address, which are judged by that address.
BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("2001::/32"), "Teredo tunnel"),
    (_V6("2001:2::/48"), "benchmarking"),
    (_V6("2001:10::/28"), "ORCHID"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
)

#: Named IPv6 ranges outside global unicast, for clearer refusals.
NAMED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::1/128"), "loopback (::1)"),
    (_V6("::/128"), "unspecified (::)"),
    (_V6("::/96"), "IPv4-compatible (deprecated)"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
    (_V6("fc00::/7"), "unique local (fc00::/7)"),
    (_V6("fe80::/10"), "link-local (fe80::/10)"),
    (_V6("fec0::/10"), "site-local (deprecated)"),
    (_V6("ff00::/8"), "multicast"),
)

_GLOBAL_UNICAST = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_SIXTOFOUR = _V6("2002::/16")
#: Characters a host name may have once IDNA-encoded (underscores exist in the wild).
_HOST_NAME = re.compile(
    r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$"
)
_CANONICAL_V4 = re.compile(r"^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class BlockedDestination(ValueError):
    """A URL or address the SSRF guard refuses; the message says why, for the user."""


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv4Address):
        return next((why for net4, why in BLOCKED_V4 if address in net4), None)
    embedded = embedded_ipv4(address)
    if embedded is not None:
        inner = blocked_reason(embedded)
        return f"embeds {embedded}, which is {inner}" if inner else None
    named = next((why for net6, why in NAMED_V6 if address in net6), None)
    if named is not None:
        return named
    if address not in _GLOBAL_UNICAST:
        return "reserved (not global unicast)"
    return next((why for net6, why in BLOCKED_V6 if address in net6), None)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, NAT64 or 6to4 address, else None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIXTOFOUR:
        return address.sixtofour
    return None


@dataclass(frozen=True)
class Policy:
    """What the guard lets through; hashable, so the HTTP client can keep one pool per policy."""

    allow_private: bool = False
    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy the operator configured."""
        networks, hosts = _parse_allowlist(settings.destination_allowlist)
        return cls(
            allow_private=settings.allow_private_destinations,
            allow_http=settings.allow_http_destinations,
            allowed_networks=networks,
            allowed_hosts=hosts,
        )

    def host_allowed(self, host: str) -> bool:
        """True for a host name on the allow-list."""
        return host.lower().rstrip(".") in self.allowed_hosts

    def check_address(self, host: str, address: str) -> str | None:
        """Why ``host`` may not be reached at ``address`` (None = go ahead).

        The resolver hook: called for every address, at connect time.
        """
        if self.allow_private or self.host_allowed(host):
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{address!r} is not an IP address"
        if any(ip in network for network in self.allowed_networks):
            return None
        reason = blocked_reason(ip)
        return f"{ip} is {reason}" if reason else None


@lru_cache(maxsize=8)
def _parse_allowlist(raw: str) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for item in (part.strip().lower() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            if _HOST_NAME.match(item.rstrip(".")):
                hosts.add(item.rstrip("."))
            else:
                log.warning(
                    "ignoring %r in SMSHUB_DESTINATION_ALLOWLIST: not a network or host", item
                )
    return tuple(networks), frozenset(hosts)


@dataclass(frozen=True)
class Target:
    """A URL that passed :func:`check_url`."""

    url: str
    scheme: str
    host: str
    port: int
    #: The host as an address when the URL names one directly (no DNS involved).
    ip: IPAddress | None


def check_url(url: str, policy: Policy) -> Target:
    """Check the URL's shape; raise :class:`BlockedDestination` with a reason otherwise.

    IP literals are judged here (no resolver sees them); host names are judged by the
    guarded resolver when the request connects (and early, at endpoint creation).
    """
    parsed = _parse(url)
    scheme = (parsed.scheme or "").lower()
    if scheme not in ("http", "https"):
        raise BlockedDestination("URL must start with https:// (or http://)")
    if (
        parsed.user is not None
        or parsed.password is not None
        or "@" in (parsed.raw_authority or "")
    ):
        raise BlockedDestination(
            "URL must not contain a user name or password; use the endpoint's headers instead"
        )
    host = (parsed.raw_host or "").lower()
    if not host:
        raise BlockedDestination("URL has no host")
    try:
        port = parsed.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedDestination(f"URL has a bad port: {exc}") from exc
    ip = _ip_literal(host)
    if ip is None:
        _check_host_name(host)
    opened = _judge_literal(ip, policy) or policy.allow_private or policy.host_allowed(host)
    if scheme == "http" and not (policy.allow_http or opened):
        raise BlockedDestination(
            "URL must use https:// (plain http:// is off; "
            "SMSHUB_ALLOW_HTTP_DESTINATIONS turns it on)"
        )
    return Target(url=str(parsed), scheme=scheme, host=host, port=port, ip=ip)


def _parse(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise BlockedDestination("URL is empty")
    if any(ord(ch) < 0x21 or ch == "\\" for ch in url.strip()):
        raise BlockedDestination("URL contains spaces, control characters or backslashes")
    try:
        return URL(url.strip())
    except (ValueError, TypeError) as exc:
        raise BlockedDestination(f"URL cannot be parsed: {exc}") from exc


def _judge_literal(ip: IPAddress | None, policy: Policy) -> bool:
    """Raise for a blocked IP literal; True when the allow-list opens it explicitly."""
    if ip is None or policy.allow_private:
        return False
    if any(ip in network for network in policy.allowed_networks):
        return True
    reason = blocked_reason(ip)
    if reason:
        raise BlockedDestination(f"{ip} is {reason}; such addresses are not allowed")
    return False


def _ip_literal(host: str) -> IPAddress | None:
    """The address of a canonical IP literal host; refuse any other numeric spelling."""
    if host.startswith("["):
        host = host[1:-1]
    if ":" in host:
        if "%" in host:
            raise BlockedDestination("IPv6 zone ids (…%eth0) are not allowed in URLs")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise BlockedDestination(f"{host!r} is not a valid IPv6 address") from exc
    labels = host.rstrip(".").split(".")
    # WHATWG URL rule: a host whose last label is a number is an IPv4 address, and
    # resolvers accept decimal, octal, hex and short forms of it. Only dotted-quad passes.
    if _NUMERIC_LABEL.match(labels[-1]) or any(label.startswith("0x") for label in labels):
        if host != host.rstrip(".") or not _CANONICAL_V4.match(host):
            raise BlockedDestination(
                f"{host!r} is an unusual spelling of an IP address; write it as a.b.c.d"
            )
        try:
            return ipaddress.IPv4Address(host)
        except ValueError as exc:
            raise BlockedDestination(f"{host!r} is not a valid IPv4 address") from exc
    return None


def _check_host_name(host: str) -> None:
    name = host.rstrip(".")
    if not _HOST_NAME.match(name) or len(name) > 253:
        raise BlockedDestination(f"{host!r} is not a valid host name")
    if name == "localhost" or name.endswith(".localhost"):
        raise BlockedDestination("localhost is not allowed")
