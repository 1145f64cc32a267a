"""Requests the server makes to URLs its callers give it (A2A push notifications): which URLs may
be called, and calling them at the very address that was checked.

A caller-supplied URL is a way into the server's network (server-side request forgery). A URL is
allowed when it is http(s) with a host whose every address is a public unicast one
(:func:`blocked` says which are not). An IPv6 address that carries an IPv4 one (IPv4-mapped,
6to4 ``2002::/16``, Teredo ``2001::/32``, NAT64 ``64:ff9b::/96``, IPv4-compatible ``::/96``) is
judged as the IPv4 address inside it as well: ``[2002:7f00:1::]`` is 127.0.0.1 to a host with a
6to4 relay.

Checking a name and then connecting to it resolves it twice, and the second answer may differ
(DNS rebinding: public when checked, 127.0.0.1 when called). :func:`screen` resolves once and
returns a :class:`Destination` pinned to the address it checked; :meth:`Destination.request`
gives what to send so that the connection goes to that address, with the URL's host in the
``Host`` header and as the TLS server name (so certificates are still verified for the name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # the server's and the (obfuscated) client's
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _not_public(address: IPAddress) -> bool:
    return (
        not address.is_global
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_private
    )


def blocked(address: str) -> bool:
    """Whether an address is not a public unicast destination, itself or through an IPv4
    address it carries (an unparseable one is blocked)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    return _not_public(parsed) or any(_not_public(v4) for v4 in embedded_ipv4(parsed))


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL, and the one address it was checked at and is to be called at."""

    url: str
    address: str

    def request(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        """The URL (with the address for host), headers and httpx extensions of a request that
        reaches :attr:`address`, named as :attr:`url` names its host."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        shown = f"[{host}]" if ":" in host else host
        headers = {"Host": shown if parts.port is None else f"{shown}:{parts.port}"}
        extensions: dict[str, Any] = {}
        if parts.scheme == "https":
            extensions["sni_hostname"] = host
        return url, headers, extensions


async def screen(url: str, allow_private: bool = False) -> Destination | None:
    """The destination of an http(s) URL whose every address is public (any address, with
    ``allow_private``), resolved once; ``None`` when it is refused or does not resolve."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None  # it would fail anyway; failing closed leaves no bypass through errors
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or (not allow_private and any(blocked(a) for a in addresses)):
        return None
    return Destination(url, addresses[0].split("%", 1)[0])
