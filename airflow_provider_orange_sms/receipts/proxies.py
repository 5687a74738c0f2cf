"""
Which address a callback comes from when reverse proxies stand in front of the API server.

The receiver believes ``X-Forwarded-For`` only from the peers of ``[orange_sms]
delivery_receipts_trusted_proxies``; the walk through the header (right to left, past every trusted
proxy, to the first address that is not one) is uvicorn's ``ProxyHeadersMiddleware``, the one the
API server's own ``--proxy-headers`` runs, given the receiver's trusted proxies. Around it, the
receiver keeps its stricter answers: a hop that is not a bare IP address (empty, a name, an
``address:port``) refuses the request instead of being skipped or trimmed, and an IPv4 proxy is
also recognised by its IPv4-mapped IPv6 form (how a dual-stack socket reports an IPv4 peer).
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING, Any, cast

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["Address", "Network", "client_address", "forwarded_for", "in_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def in_networks(address: Address, networks: tuple[Network, ...]) -> bool:
    """
    Whether ``address`` is in one of ``networks``; an IPv4-mapped IPv6 address counts as its IPv4 form.

    :param address: The address.
    :param networks: The networks.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def _trusted_hosts(networks: tuple[Network, ...]) -> list[str]:
    """
    ``networks`` as uvicorn's trusted hosts, matching exactly the addresses :func:`in_networks` matches.

    uvicorn compares addresses as written: an IPv4 network is also given in its IPv4-mapped form,
    and an IPv6 network loses the mapped range (those addresses are IPv4 peers to :func:`in_networks`).
    Every entry is written as a network (``/32``), which uvicorn reads as one.
    """
    hosts: list[Network] = []
    for network in networks:
        if isinstance(network, ipaddress.IPv4Network):
            mapped = f"::ffff:{network.network_address}/{96 + network.prefixlen}"
            hosts += [network, ipaddress.IPv6Network(mapped)]
        elif not network.overlaps(_IPV4_MAPPED):
            hosts.append(network)
        elif not network.subnet_of(_IPV4_MAPPED):
            hosts += network.address_exclude(_IPV4_MAPPED)
    return [str(host) for host in hosts]


async def _keep_scope(scope: Any, receive: Any, send: Any) -> None:
    """The app behind the middleware: only the scope it rewrote is wanted."""


async def _no_body() -> Any:
    raise RuntimeError("no request body is read while reading X-Forwarded-For")


async def _no_answer(message: Any) -> None:
    raise RuntimeError("nothing is answered while reading X-Forwarded-For")


@functools.lru_cache(maxsize=8)
def _middleware(networks: tuple[Network, ...]) -> ProxyHeadersMiddleware:
    return ProxyHeadersMiddleware(_keep_scope, trusted_hosts=_trusted_hosts(networks))


def _forwarded_client(networks: tuple[Network, ...], scope: dict[str, Any]) -> None:
    """Let uvicorn's middleware rewrite ``scope["client"]``; it awaits nothing but the app above."""
    step = _middleware(networks)(cast("Any", scope), _no_body, _no_answer)
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()
    raise RuntimeError("uvicorn's ProxyHeadersMiddleware waited for I/O: it used to only rewrite the scope")


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[Network, ...]
) -> Address | None:
    """
    The address a request comes from: the TCP peer, or, from a trusted proxy, ``X-Forwarded-For``.

    From a trusted proxy: the right-most hop that is not a trusted proxy, or the left-most when all
    are. Returns None when no address can be determined (the peer or a hop read on the way is not an
    IP address): the caller refuses.

    :param peer: The TCP peer's address.
    :param forwarded_for: The ``X-Forwarded-For`` header (every line, see :func:`forwarded_for`), if any.
    :param trusted_proxies: Proxies whose header is believed.
    """
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return None
    if not forwarded_for or not in_networks(address, trusted_proxies):
        return address
    as_received = (peer, 0)
    header = forwarded_for.encode("latin-1", "replace")  # how ASGI servers hand headers over
    scope: dict[str, Any] = {"type": "http", "client": as_received, "headers": [(b"x-forwarded-for", header)]}
    _forwarded_client(trusted_proxies, scope)
    if scope["client"] is as_received:
        return None  # uvicorn keeps the proxy as the client when the hop it stops at is empty
    host, port = scope["client"]
    if port:
        return None  # an "address:port" hop: refused, as any hop that is not a bare address
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def forwarded_for(request: Request) -> str | None:
    """
    Every ``X-Forwarded-For`` line of ``request``, in order, as one comma-separated list.

    A proxy may append its own header line instead of extending the client's (RFC 9110 §5.3 reads
    repeated lines as one list): reading only the first line would believe whatever the client wrote.

    :param request: The HTTP request.
    """
    lines = request.headers.getlist("x-forwarded-for")
    return ", ".join(lines) if lines else None
