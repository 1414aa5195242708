"""Who is calling: the client's IP address, believing ``X-Forwarded-For`` only from a
configured reverse proxy (``BANSHI_TRUSTED_PROXIES``, default 127.0.0.1), and a
keyed hash of it for counters (raw addresses are never stored)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache
from typing import List, Optional, Tuple, Union

from starlette.requests import HTTPConnection

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
MAX_ADDRESS_CHARS = 64


@lru_cache(maxsize=16)
def parse_networks(spec: str) -> Tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` → the networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _address(value: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def is_trusted(value: str, networks: Tuple[Network, ...]) -> bool:
    address = _address(value)
    return address is not None and any(address in network for network in networks)


def resolve_client_ip(peer: str, forwarded_for: List[str], networks: Tuple[Network, ...]) -> str:
    """The client's address: the direct peer, unless the peer is a trusted proxy; then
    the nearest address in ``X-Forwarded-For`` (read right to left) that is not a
    trusted proxy. Addresses a client wrote itself (left of the first untrusted hop)
    are never believed."""
    if not is_trusted(peer, networks):
        return peer[:MAX_ADDRESS_CHARS]
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage where a proxy should have written an address
            break
        client = str(address)
        if not is_trusted(client, networks):
            break
    return client[:MAX_ADDRESS_CHARS]


def client_ip(conn: HTTPConnection, trusted_proxies: str) -> str:
    """The client IP of a request or WebSocket ('' when unknown)."""
    peer = conn.client.host if conn.client else ""
    return resolve_client_ip(peer or "", conn.headers.getlist("x-forwarded-for"), parse_networks(trusted_proxies))


def client_key(secret: bytes, address: str) -> str:
    """A keyed hash of a client address: stable for counting, not reversible."""
    return hmac.new(secret, f"client:{address}".encode(), hashlib.sha256).hexdigest()[:32]


def conversation_key(secret: bytes, sender_id: str) -> str:
    return hmac.new(secret, f"conversation:{sender_id}".encode(), hashlib.sha256).hexdigest()[:32]
