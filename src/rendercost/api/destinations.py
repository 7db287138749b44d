"""Where the server may send a tenant's webhooks: public addresses only, unless an operator allows more.

A tenant names a ``webhook_url``; the server then makes requests to it. Left unchecked, that lets a
tenant reach what only the server can: loopback services, the private network, the cloud metadata
endpoint (169.254.169.254). ``check_destination`` resolves the URL's host and refuses it unless every
address it resolves to is globally routable (``ipaddress``'s ``is_global``), or the host or the address
is on ``webhook_allowed_hosts`` (host names, IP addresses or CIDR networks, e.g. ``["10.1.2.0/24",
"hooks.internal"]``). A host that does not resolve is refused too: it cannot be shown to be safe.
It runs when a job is submitted (a 400 naming ``webhook_url``) and again before each delivery, since a
name can resolve elsewhere later. Blocking (DNS): call it in a worker thread.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from rendercost.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]  # host -> the addresses it resolves to

REFUSED_CODE = "webhook_url_refused"


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_destination(
    url: str, *, allowed: Sequence[str] = (), resolve: Resolver = resolve_host, param: str = "webhook_url"
) -> None:
    """Return when ``url`` may be sent to; ``InvalidRequest`` (code ``webhook_url_refused``) otherwise."""
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        raise InvalidRequest(f"{param} has no host", param=param, code=REFUSED_CODE)
    hosts, networks = _allowlist(allowed)
    if host in hosts:
        return
    try:
        addresses = [_address(text) for text in resolve(host)]
    except (OSError, ValueError):
        raise InvalidRequest(
            f"{param} host {host!r} does not resolve", param=param, code=REFUSED_CODE
        ) from None
    for address in addresses:
        if not address.is_global and not any(address in network for network in networks):
            raise InvalidRequest(
                f"{param} resolves to {address}, which is not a public address; an operator can allow it "
                "with the webhook_allowed_hosts setting",
                param=param,
                code=REFUSED_CODE,
            )


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def _allowlist(
    allowed: Sequence[str],
) -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts: set[str] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in allowed:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            hosts.add(entry.strip().lower())
    return hosts, networks
