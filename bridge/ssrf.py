"""Refuse webhook targets that point into the bridge's own network.

A subscription URL is a request the bridge makes on someone's behalf, so
it must not reach loopback, private, link-local (cloud metadata at
169.254.169.254), multicast, reserved or unspecified addresses. The check
looks at every address the host resolves to, unwrapping IPv4-mapped IPv6
(``::ffff:127.0.0.1``). Networks in ``BRIDGE_ALLOW_PRIVATE_TARGETS`` are
let through, for local tests and subscribers on the same network.

For the delivery code:

- call :func:`check_target` again before each attempt, since the name
  may resolve elsewhere by then;
- post with ``allow_redirects=False``: a redirect would lead past the
  check, and Standard Webhooks counts a 3xx as a failure anyway.

What remains is the short gap between this check and the connection
(DNS rebinding); closing it means pinning the checked address in the
transport or an egress proxy, which the spec recommends for large setups.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import DeliveryError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., list[tuple[Any, ...]]]

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeTargetError(DeliveryError, ValueError):
    """A webhook URL the bridge refuses to call, with the reason why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_target(
    url: str, allowed: tuple[str, ...] = (), resolve: Resolver = socket.getaddrinfo
) -> None:
    """Refuse ``url`` unless it is http(s) and every address it names is public.

    Args:
        url: the subscription URL.
        allowed: networks (``"127.0.0.0/8"``) let through despite the rule.
        resolve: ``socket.getaddrinfo`` or a stand-in with its signature.

    Raises:
        UnsafeTargetError: the scheme, host, name resolution or one of the
            addresses is refused; the message says which.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise UnsafeTargetError(f"the URL does not parse: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeTargetError(f"scheme must be http or https; got {scheme!r}")

    host = parts.hostname
    if not host:
        raise UnsafeTargetError("a host is required")

    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise UnsafeTargetError("the port is not a number from 0 to 65535") from None

    networks = [ipaddress.ip_network(net, strict=False) for net in allowed]
    for address in resolve_host(host, port, resolve):
        refuse_unless_public(host, address, networks)


def resolve_host(host: str, port: int, resolve: Resolver) -> list[Address]:
    """Return every address ``host`` stands for; a literal stands for itself.

    Raises:
        UnsafeTargetError: the name does not resolve.
    """
    literal = _parse_address(host)
    if literal is not None:
        return [literal]

    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeTargetError(f"cannot resolve host {host!r}") from None

    addresses = [_parse_address(str(info[4][0])) for info in infos]
    found = [address for address in addresses if address is not None]
    if not found:
        raise UnsafeTargetError(f"cannot resolve host {host!r}")
    return found


def refuse_unless_public(
    host: str, address: Address, allowed: Iterable[Network]
) -> None:
    """Raise unless ``address`` is global or inside an allowed network.

    Raises:
        UnsafeTargetError: naming the host, the address and its kind.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return

    kind = describe_address(address)
    if kind is None:
        return
    shown = str(address) if host == str(address) else f"{host} ({address})"
    raise UnsafeTargetError(f"{shown} is {kind}, not a public address")


def describe_address(address: Address) -> str | None:
    """Return why an address is not public (``"loopback"``…), or None if it is.

    Each flag is tested on its own: Python calls some reserved IPv6
    ranges global.
    """
    kinds = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-global", not address.is_global),
    )
    return next((kind for kind, flagged in kinds if flagged), None)


def _parse_address(text: str) -> Address | None:
    """Return ``text`` as an IP address without its zone, or None if not one."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
