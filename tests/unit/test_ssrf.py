"""The SSRF guard's rules: every blocked range, URL spellings, the allow-list, the resolver hook."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from hub.delivery.ssrf import BlockedDestination, Policy, blocked_reason, check_url
from hub.http_client import DestinationRefused, GuardedResolver
from hub.settings import Settings

GUARD = Policy()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "127.255.255.254",  # the rest of 127/8 is loopback too
        "10.0.0.1",  # RFC 1918
        "172.16.0.1",  # RFC 1918
        "172.31.255.255",  # RFC 1918, top of 172.16/12
        "192.168.1.1",  # RFC 1918
        "169.254.169.254",  # link-local: the cloud metadata service
        "100.64.0.1",  # carrier-grade NAT
        "100.127.255.254",  # carrier-grade NAT, top of 100.64/10
        "0.0.0.0",  # 'this host'; Linux connects it to localhost
        "0.1.2.3",  # 'this network' 0/8
        "192.0.0.8",  # IETF protocol assignments
        "192.0.2.10",  # documentation TEST-NET-1
        "198.51.100.7",  # documentation TEST-NET-2
        "203.0.113.9",  # documentation TEST-NET-3
        "198.18.0.1",  # benchmarking 198.18/15
        "198.19.255.1",  # benchmarking, second half
        "192.88.99.1",  # 6to4 relay anycast
        "224.0.0.1",  # multicast
        "239.255.255.250",  # multicast (SSDP)
        "240.0.0.1",  # reserved 240/4
        "255.255.255.255",  # broadcast
        "::1",  # IPv6 loopback
        "::",  # IPv6 unspecified
        "::127.0.0.1",  # IPv4-compatible (deprecated), any address
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "::ffff:169.254.169.254",  # IPv4-mapped metadata service
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::1",  # local-use NAT64
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "fe80::1",  # link-local
        "febf::1",  # link-local, top of fe80::/10
        "fec0::1",  # site-local (deprecated)
        "fc00::1",  # unique local
        "fd12:3456:789a::1",  # unique local (the usual fd00::/8 half)
        "ff02::1",  # multicast
        "100::1",  # discard-only
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (RFC 9637)
        "2001::1",  # Teredo
        "2001:2::1",  # benchmarking
        "2001:10::1",  # ORCHID
        "4000::1",  # outside global unicast 2000::/3 (reserved)
    ],
)
def test_blocked_addresses_are_refused(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None
    assert GUARD.check_address("example.com", address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",  # public DNS
        "93.184.215.14",  # a public web server
        "100.128.0.1",  # just past carrier-grade NAT
        "172.32.0.1",  # just past 172.16/12
        "198.20.0.1",  # just past benchmarking
        "2606:4700:4700::1111",  # public IPv6
        "::ffff:8.8.8.8",  # IPv4-mapped public address
        "64:ff9b::808:808",  # NAT64 of a public address
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None
    assert GUARD.check_address("example.com", address) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/hook", "https"),  # plain http is off by default
        ("ftp://example.com/hook", "https"),  # not http at all
        ("file:///etc/passwd", "https"),  # not http at all
        ("https://user:pass@example.com/", "password"),  # credentials in the URL
        ("https://user@example.com/", "password"),  # a user name alone
        ("https://2130706433/", "unusual spelling"),  # decimal 127.0.0.1
        ("https://017700000001/", "unusual spelling"),  # octal, one number
        ("https://0177.0.0.1/", "unusual spelling"),  # octal dotted
        ("https://0x7f.1/", "unusual spelling"),  # hex with short form
        ("https://0x7f000001/", "unusual spelling"),  # hex, one number
        ("https://127.1/", "unusual spelling"),  # short form
        ("https://127.0.1/", "unusual spelling"),  # short form, three parts
        ("https://127.0.0.1./", "unusual spelling"),  # trailing dot on an address
        ("https://010.0.0.1/", "unusual spelling"),  # leading zero = octal to some parsers
        ("https://example.0x10/", "unusual spelling"),  # hex label
        ("https://1.2.3.4.5/", "unusual spelling"),  # five parts
        ("https://127.0.0.1/", "loopback"),  # the literal itself
        ("https://169.254.169.254/latest/meta-data/", "link-local"),  # metadata
        ("https://10.1.2.3/", "private"),  # RFC 1918 literal
        ("https://[::1]/", "loopback"),  # IPv6 loopback literal
        ("https://[::ffff:127.0.0.1]/", "embeds 127.0.0.1"),  # mapped loopback literal
        ("https://[::ffff:7f00:1]/", "embeds 127.0.0.1"),  # the same, hex-written
        ("https://[64:ff9b::7f00:1]/", "embeds 127.0.0.1"),  # NAT64 literal
        ("https://[2002:7f00:1::1]/", "embeds 127.0.0.1"),  # 6to4 literal
        ("https://[fe80::1%25eth0]/", "zone"),  # zone id
        ("https://[fd00::1]/", "unique local"),  # ULA literal
        ("https://localhost/", "localhost"),  # the name itself
        ("https://api.localhost/", "localhost"),  # *.localhost resolves to loopback
        ("https://exa mple.com/", "spaces"),  # whitespace
        ("https://example.com\\@evil.com/", "backslash"),  # parser confusion
        ("https://ex%41mple.com/", "host name"),  # percent-encoded host
        ("https:///path", "no host"),  # no host at all
        ("", "empty"),  # nothing
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, why: str) -> None:
    with pytest.raises(BlockedDestination) as excinfo:
        check_url(url, GUARD)
    assert why in str(excinfo.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "https://hooks.zapier.com/hooks/catch/1/abc/",
        "https://8.8.8.8/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://EXAMPLE.com:8443/a?b=c",
        "https://bücher.example/hook",  # IDN, checked in its punycode form
        "https://example.com./hook",  # a fully qualified name may end in a dot
    ],
)
def test_good_urls_pass(url: str) -> None:
    target = check_url(url, GUARD)
    assert target.scheme == "https"


def test_fullwidth_digits_are_read_as_the_address_they_spell() -> None:
    # yarl folds these to 127.0.0.1, and aiohttp would connect there without a resolver.
    with pytest.raises(BlockedDestination, match="loopback"):
        check_url("https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", GUARD)  # fullwidth 127.0.0.1


def test_http_needs_the_setting() -> None:
    assert check_url("http://example.com/", Policy(allow_http=True)).scheme == "http"


def test_allow_private_opens_addresses_but_not_credentials() -> None:
    open_policy = Policy(allow_private=True)
    assert check_url("http://127.0.0.1:8080/hook", open_policy).port == 8080
    assert open_policy.check_address("localhost", "127.0.0.1") is None
    with pytest.raises(BlockedDestination, match="password"):
        check_url("http://u:p@127.0.0.1/", open_policy)
    with pytest.raises(BlockedDestination, match="unusual spelling"):
        check_url("http://2130706433/", open_policy)


def test_allowlist_opens_networks_and_hosts_only() -> None:
    policy = Policy.from_settings(Settings(destination_allowlist="10.0.0.0/8, n8n.lan,fd00::/8"))
    assert policy.check_address("anything", "10.9.8.7") is None  # allowed network
    assert policy.check_address("anything", "fd00::5") is None  # allowed IPv6 network
    assert policy.check_address("anything", "192.168.1.1") is not None  # not on the list
    assert policy.check_address("n8n.lan", "192.168.1.1") is None  # allowed host, any address
    assert policy.check_address("N8N.lan.", "192.168.1.1") is None  # case and trailing dot
    # Internal services rarely have TLS: allow-listed destinations may use http.
    assert check_url("http://n8n.lan:5678/webhook/x", policy).host == "n8n.lan"
    assert check_url("http://10.0.0.5/hook", policy).ip == ipaddress.ip_address("10.0.0.5")
    with pytest.raises(BlockedDestination):
        check_url("https://192.168.1.1/hook", policy)


class ScriptedResolver(AbstractResolver):
    """Answers each lookup with the next list of addresses."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        return [_result(host, a, port) for a in self.answers.pop(0)]

    async def close(self) -> None:
        pass


def _result(host: str, address: str, port: int) -> Any:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)


async def test_resolver_refuses_a_host_when_any_address_is_blocked() -> None:
    inner = ScriptedResolver(["93.184.215.14"], ["93.184.215.14", "127.0.0.1"], ["::1"])
    resolver = GuardedResolver(inner, GUARD)
    assert [r["host"] for r in await resolver.resolve("example.com", 443)] == ["93.184.215.14"]
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 is loopback"):
        await resolver.resolve("example.com", 443)
    with pytest.raises(DestinationRefused, match="loopback"):
        await resolver.resolve("example.com", 443)
