"""Where the server may connect: the ``allowed_hosts`` and ``allow_private_addresses``
settings.

The runner connects to URLs its callers chose (item URLs, webhook endpoints). On a
developer's machine those are usually loopback services, so by default anything goes.
With ``allow_private_addresses=False`` (a server others can reach) the host is resolved
first and every address it has must be public (``ipaddress``'s ``is_global``, not
multicast; an IPv4-mapped IPv6 address counts as its IPv4 one): loopback, link-local
(cloud metadata at 169.254.169.254), private, shared and reserved ranges are refused
before any connection is opened. The request is then pinned to the address that was
checked (the URL's host becomes that address; ``Host`` and TLS SNI keep the name), so a
second, different DNS answer cannot sneak a private address in. ``allowed_hosts``, when
set, is checked first, on the URL's host as written, before any lookup.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

__all__ = ["Refused", "Target", "target_of", "tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process.

    Building one loads the CA bundle (tens of milliseconds of CPU); every server
    start made two, mostly for loopback http:// URLs that never use them.
    """
    return httpx.create_ssl_context()


class Refused(Exception):
    """The destination is not one the server may connect to; the message says why."""


@dataclass(frozen=True)
class Target:
    """What to hand httpx for one request to a checked destination."""

    url: httpx.URL | str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def target_of(
    url: str, *, allow_private: bool, allowed_hosts: tuple[str, ...] | None = None
) -> Target:
    """The request target for ``url``, checked against the settings.

    Raises:
        Refused: the host is not in ``allowed_hosts`` (when given), does not resolve, or
            resolves to an address that is not public while ``allow_private`` is False.
            Nothing has been sent then.
    """
    parsed = httpx.URL(url)
    host = parsed.host
    if allowed_hosts is not None and host.lower() not in allowed_hosts:
        raise Refused(f"{host} is not in allowed_hosts")
    if allow_private:
        return Target(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"cannot resolve {host!r} ({exc})") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise Refused(f"{host!r} has no address")
    for address in addresses:
        if not _is_public(address):
            raise Refused(
                f"{host} is {address}, not a public address (allow_private_addresses is off)"
            )
    pinned = parsed.copy_with(host=str(addresses[0]))
    headers = {"host": parsed.netloc.decode("ascii")}
    extensions: dict[str, Any] = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Target(pinned, headers, extensions)
