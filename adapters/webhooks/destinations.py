"""Which webhook destinations may be called: the guard against server-side request forgery.

A URL is refused when it is not a plain http(s) URL, or when any address its host resolves to
is not public (loopback, private, link-local, multicast, reserved, unspecified, the shared
100.64/10), unless private destinations are allowed. Every address counts, not only the first:
a client may connect to any of them. The URL is parsed by httpx, the parser of the client that
calls it, so the host checked is the host connected to.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import Final, TypeAlias

import attrs
import httpx

IPAddress: TypeAlias = IPv4Address | IPv6Address

Resolve: TypeAlias = Callable[[str], Iterable[str]]
"""A host name to its addresses; none, or an `OSError`, when it does not resolve."""

MAX_URL_LENGTH: Final = 2000
DEFAULT_PORTS: Final = {"http": 80, "https": 443}
SHARED: Final = IPv4Network("100.64.0.0/10")  # carrier-grade NAT: not global, not "private"

# The first that holds names the address in a refusal; the last catches what the others miss
# (documentation and benchmark ranges, 6to4 relays...): only global addresses pass.
KINDS: Final[tuple[tuple[str, Callable[[IPAddress], bool]], ...]] = (
    ("an unspecified", lambda a: a.is_unspecified),
    ("a loopback", lambda a: a.is_loopback),
    ("a link-local", lambda a: a.is_link_local),
    ("a multicast", lambda a: a.is_multicast),
    ("a shared (carrier-grade NAT)", lambda a: a in SHARED),
    ("a private", lambda a: a.is_private),
    ("a reserved", lambda a: a.is_reserved),
    ("a non-public", lambda a: not a.is_global),
)


class RefusedDestination(Exception):
    """A webhook URL that may not be called; the message says why, to follow "the URL"."""


@attrs.frozen
class Destination:
    """A URL that passed the check, with the addresses it was checked at."""

    url: httpx.URL
    host: str  # as the client connects to it: an IDNA-encoded name or an IP literal
    port: int
    addresses: tuple[IPAddress, ...]

    @property
    def by_address(self) -> bool:
        """Whether the URL names an IP address rather than a host name to resolve."""
        return _literal(self.host) is not None


def system_resolve(host: str) -> list[str]:
    """The host's IPv4 and IPv6 addresses, from the system resolver."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def check(url: str, *, allow_private: bool, resolve: Resolve = system_resolve) -> Destination:
    """Parse and resolve a webhook URL, and tell where it may be called.

    Raises:
        RefusedDestination: the URL is malformed, its host does not resolve, or (unless
            `allow_private`) one of its addresses is not public.
    """
    if len(url) > MAX_URL_LENGTH:
        raise RefusedDestination(f"is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise RefusedDestination("is not a valid URL") from None
    if parsed.scheme not in DEFAULT_PORTS:
        raise RefusedDestination("must be an http or https URL")
    if not parsed.raw_host:
        raise RefusedDestination("has no host")
    if parsed.userinfo:
        raise RefusedDestination("must not carry a user name or password")
    host = parsed.raw_host.decode("ascii")
    literal = _literal(host)
    addresses = (literal,) if literal else _resolved(host, resolve)
    if not allow_private:
        for address in addresses:
            if kind := _kind(_unmapped(address)):
                verb = "points to" if literal else "resolves to"
                raise RefusedDestination(f"{verb} {kind} address {_unmapped(address)}")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    return Destination(url=parsed, host=host, port=port, addresses=addresses)


def refusal(url: str, *, allow_private: bool, resolve: Resolve = system_resolve) -> str | None:
    """Why a webhook URL may not be called, or None when it may."""
    try:
        check(url, allow_private=allow_private, resolve=resolve)
    except RefusedDestination as refused:
        return str(refused)
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def _resolved(host: str, resolve: Resolve) -> tuple[IPAddress, ...]:
    try:
        found = tuple(dict.fromkeys(ip_address(a) for a in resolve(host)))
    except OSError:
        found = ()
    if not found:
        raise RefusedDestination("does not resolve")
    return found


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped IPv6 one (::ffff:10.0.0.5 reaches 10.0.0.5)."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: IPAddress) -> str | None:
    """What makes an address not public ("a private"), or None for a public one."""
    return next((kind for kind, holds in KINDS if holds(address)), None)
