"""Where a webhook may go: never to loopback, private, link-local (cloud metadata),
multicast or reserved addresses unless ``CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS`` allows them.

The host is resolved once per attempt, every address it resolves to is checked, and the
connection is made to the checked address (with the URL's host in ``Host`` and in TLS's
SNI and certificate check): a name that resolves to a public address when checked and to
an internal one when connecting (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedAddress(Exception):
    """The URL may not be called: its host resolves to an address that is not allowed."""


def parse_networks(spec: str) -> list[IPNetwork]:
    """Comma-separated CIDRs (``127.0.0.0/8,10.0.0.0/8``); a bad one is a clear error."""
    networks: list[IPNetwork] = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError as error:
                raise ValueError(f"CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS: {error}") from error
    return networks


def allowed(address: IPAddress, networks: list[IPNetwork]) -> bool:
    if any(address in network for network in networks):
        return True
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
    if mapped is not None:
        return allowed(mapped, networks)
    return address.is_global and not address.is_multicast


@functools.lru_cache(maxsize=4096)
def _checked(text: str, networks: tuple[IPNetwork, ...]) -> tuple[IPAddress, bool]:
    """An address as resolved, parsed, and whether it may be reached: a function of the two
    alone, so remembered (the resolution itself is made at every attempt)."""
    address = ipaddress.ip_address(text)
    return address, allowed(address, list(networks))


@dataclass(frozen=True, slots=True)
class Target:
    """A checked destination: the URL to connect to (host replaced by the address), and the
    name it stands for (``Host`` header, TLS server name)."""

    url: str
    host: str
    address: IPAddress


def resolve(url: str, networks: list[IPNetwork]) -> Target:
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise RefusedAddress(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise RefusedAddress(f"{host} does not resolve: {error.strerror}") from error
    checked = [_checked(str(info[4][0]).split("%")[0], tuple(networks)) for info in infos]
    addresses = [address for address, _ in checked]
    refused = [address for address, ok in checked if not ok]
    if refused or not addresses:
        raise RefusedAddress(
            f"{host} resolves to {refused[0] if refused else 'nothing'}, an address webhooks"
            " may not reach (allow it with CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS)"
        )
    address = addresses[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown}:{port}"
    pinned = parts._replace(netloc=netloc).geturl()
    return Target(
        url=pinned, host=host if parts.port is None else f"{host}:{parts.port}", address=address
    )


def check_url(url: str, networks: list[IPNetwork]) -> None:
    """Refuse, when an endpoint is created or changed, a URL that could never be delivered
    to; the check is made again at every attempt (DNS answers change)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise RefusedAddress("a webhook URL may not carry a user name or password")
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.lower() in ("localhost",) or host.lower().endswith(".localhost"):
            address = ipaddress.ip_address("127.0.0.1")
        else:
            return  # a name: checked when resolved, at each attempt
    if not allowed(address, networks):
        raise RefusedAddress(
            f"{host} is an address webhooks may not reach"
            " (allow it with CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS)"
        )
