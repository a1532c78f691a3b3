"""Decide whether a URL may be fetched, so a public feed cannot steer us into a private network.

A feed from the internet may link to http://169.254.169.254/ (cloud metadata) or
http://10.0.0.5/admin; following such links would let any feed author probe the network
digest runs in. Pages are only fetched from public addresses, unless the operator trusts
the host (a feed they run themselves on localhost) or sets `[collect] allow_private`.

Checks happen before each request and each redirect hop (so the reason can be reported
plainly), and again inside the HTTP transport at connect time: `guard_client` makes the
client's connections resolve the name once, check every address, and connect to a checked
address, so a DNS answer that changes in between (DNS rebinding) cannot slip through.
The per-request policy travels in a context variable set by `policy()`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

_CGNAT = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")
_HINT = "(allow with [collect] allow_private = true)"


def _problem(addr: IPv4Address | IPv6Address) -> str | None:
    """Return what kind of non-public address `addr` is, or None when it is public."""
    if isinstance(addr, IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that IPv4 host.
        if addr.ipv4_mapped is not None:
            return _problem(addr.ipv4_mapped)
        if addr in _NAT64:
            return _problem(IPv4Address(int(addr) & 0xFFFFFFFF))
        if addr.sixtofour is not None:
            return _problem(addr.sixtofour)
        if addr.teredo is not None:
            return _problem(addr.teredo[1])
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local"
    if addr.is_multicast:
        return "multicast"
    if isinstance(addr, IPv4Address) and addr in _CGNAT:
        return "shared (CGNAT)"
    if addr.is_private:
        return "private"
    if addr.is_reserved or not addr.is_global:
        return "reserved"
    return None


def is_public_address(ip: str) -> bool:
    """Return True if `ip` is a public address; raise ValueError if it is not an IP literal."""
    return _problem(ip_address(ip.strip("[]"))) is None


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """Return the addresses `host` resolves to (raises socket.gaierror when it does not)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _check_host(host: str, port: int, resolve: Resolver) -> tuple[str | None, list[str]]:
    """Return (why `host` is refused or None, the addresses it resolved to)."""
    try:
        literal = ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        problem = _problem(literal)
        return (f"refused: {host} is a {problem} address {_HINT}" if problem else None), [host]
    try:
        addresses = await resolve(host, port)
    except socket.gaierror:
        return f"DNS: name not found ({host})", []
    except UnicodeError:
        return f"refused: invalid host name {host!r}", []
    if not addresses:
        return f"DNS: name not found ({host})", []
    # Refuse if any answer is private: the connection may use any of them.
    for text in addresses:
        addr = ip_address(text)
        problem = _problem(addr)
        if problem:
            return f"refused: {host} resolves to {problem} address {addr} {_HINT}", addresses
    return None, addresses


async def check_url_allowed(
    url: str,
    *,
    trusted_hosts: frozenset[str],
    allow_private: bool,
    resolve: Resolver = system_resolve,
) -> str | None:
    """Return why `url` must not be fetched, or None when it may be."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"refused: {scheme or 'schemeless'} URLs are not fetched"
    host = parts.hostname
    if not host:
        return "refused: the URL has no host"
    if allow_private or host in {h.lower() for h in trusted_hosts}:
        return None
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "refused: invalid port in URL"
    reason, _ = await _check_host(host, port, resolve)
    return reason


# -- the same check at connect time, inside the HTTP transport ----------------------


@dataclass(frozen=True)
class Policy:
    """Whom a request may connect to: public addresses, plus these hosts."""

    trusted_hosts: frozenset[str]
    allow_private: bool = False


_policy: ContextVar[Policy | None] = ContextVar("digest_netguard_policy", default=None)


@contextmanager
def policy(rule: Policy | None) -> Iterator[None]:
    """Apply `rule` to the connections made in this block (None: no checks)."""
    token = _policy.set(rule)
    try:
        yield
    finally:
        _policy.reset(token)


class AddressRefused(httpcore.ConnectError):
    """A connection the policy forbids; its message starts with "refused:"."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows.

    The name is resolved here, every answer checked, and the connection made to a
    checked address (TLS still verifies the certificate for the name), so there is no
    second lookup for a rebinding DNS server to answer differently.
    """

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend, resolve: Resolver = system_resolve
    ) -> None:
        self.inner = inner
        self.resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        rule = _policy.get()
        if rule is None or rule.allow_private or host.lower() in rule.trusted_hosts:
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        reason, addresses = await _check_host(host, port, self.resolve)
        if reason:
            raise AddressRefused(reason)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("refused: unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guard_client(client: httpx.AsyncClient, resolve: Resolver = system_resolve) -> None:
    """Make `client`'s direct connections (not those through a proxy) obey `policy()`.

    httpx has no public hook for the network backend, so this reaches into its default
    transport; it fails loudly rather than leave the client unguarded if that changes.
    """
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        raise RuntimeError(f"cannot guard this HTTP client's connections ({type(pool)!r})")
    pool._network_backend = GuardedBackend(pool._network_backend, resolve)
