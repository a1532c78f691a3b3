"""Decide whether a URL may be fetched, so a public feed cannot steer us into a private network.

A feed from the internet may link to http://169.254.169.254/ (cloud metadata) or
http://10.0.0.5/admin; following such links would let any feed author probe the network
digest runs in. Pages are only fetched from public addresses, unless the operator trusts
the host (a feed they run themselves on localhost) or sets `[collect] allow_private`.

Checks happen before each request and each redirect hop. The name is resolved again when
connecting, so a DNS answer that changes in between is not caught; that needs a resolver
pinned inside the HTTP transport.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from urllib.parse import urlsplit

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


async def check_url_allowed(
    url: str, *, trusted_hosts: frozenset[str], allow_private: bool
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
        literal = ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        problem = _problem(literal)
        return f"refused: {host} is a {problem} address {_HINT}" if problem else None
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "refused: invalid port in URL"
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return f"DNS: name not found ({host})"
    except UnicodeError:
        return f"refused: invalid host name {host!r}"
    if not infos:
        return f"DNS: name not found ({host})"
    # Refuse if any answer is private: the connection may use any of them.
    for info in infos:
        addr = ip_address(str(info[4][0]))
        problem = _problem(addr)
        if problem:
            return f"refused: {host} resolves to {problem} address {addr} {_HINT}"
    return None
