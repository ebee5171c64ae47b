"""Who the client really is behind trusted proxies: `FORWARDED_ALLOW_IPS` and the
`Forwarded` / `X-Forwarded-*` request fields.

`TrustedPeers` answers "is this peer one of our proxies?" for an address
(IPv4, IPv6, a CIDR range, `*`, or `unix` for Unix-socket peers).
`ProxyHeaders.resolve` turns a request's fields into the client, scheme,
server, header list and path prefix the scope should carry, walking a chain
of proxies from the right (the hop nearest to us) and stopping at the first
hop that is not trusted: everything left of it was written by someone we do
not trust.

RFC 7239 `Forwarded` wins over the `X-Forwarded-*` family when both are
present.  `asgi/request_head.py` calls this only when a request carries one
of `FORWARDED_FIELDS` (HTTP/1.1 notes that while it parses the head), so a
request without them pays nothing.  This module never touches the wire and
never builds a scope.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qactuar.config import Config

Address = tuple[str, int]
# The request fields this module reads (lower-case, as in an ASGI header list).
FORWARDED_FIELDS = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto",
                              b"x-forwarded-host", b"x-forwarded-port", b"x-forwarded-prefix"})
UNIX_PEERS = "unix"  # the FORWARDED_ALLOW_IPS entry that trusts Unix-socket peers
DEFAULT_ALLOW = "127.0.0.1,::1,unix"
# Schemes a proxy may report: a WebSocket's ws/wss stand for http/https in the
# HTTP scope (the WebSocket scope turns them back).
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "-._~%!$&'()*+,;=:[]")
_TRUST_CACHE_LIMIT = 1024


def parse_allow_list(text: str) -> tuple[bool, bool, tuple[ipaddress.IPv4Network
                                                           | ipaddress.IPv6Network, ...]]:
    """(trust everyone, trust Unix-socket peers, networks) of a FORWARDED_ALLOW_IPS value;
    ValueError names an entry that is none of those."""
    everyone = unix = False
    networks = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        if entry == "*":
            everyone = True
        elif entry.lower() in (UNIX_PEERS, "unix:"):
            unix = True
        else:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(entry) from None
    return everyone, unix, tuple(networks)


class TrustedPeers:
    """The peers whose forwarding fields (or PROXY header) are believed."""

    def __init__(self, allow: str) -> None:
        self.everyone, self.unix, self.networks = parse_allow_list(allow)
        # Decisions by address: a proxy connects from the same few addresses.
        self._known: dict[str, bool] = {}

    def trusts(self, host: str | None) -> bool:
        """Whether a peer at `host` is trusted (None or "": a Unix-socket peer)."""
        if self.everyone:
            return True
        if not host:
            return self.unix
        known = self._known.get(host)
        if known is None:
            known = self._check(host)
            if len(self._known) < _TRUST_CACHE_LIMIT:
                self._known[host] = known
        return known

    def _check(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False  # a name or an obfuscated identifier: never one of ours
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


class ForwardedView:
    """What a request's forwarding fields say, once trusted: the scope's view of it."""

    __slots__ = ("client", "headers", "prefix", "scheme", "server")

    def __init__(self, client: Address | None, scheme: str, server: Address | None,
                 headers: list[tuple[bytes, bytes]], prefix: str) -> None:
        self.client = client
        self.scheme = scheme
        self.server = server
        self.headers = headers
        self.prefix = prefix


class ProxyHeaders:
    """Applies `Forwarded` / `X-Forwarded-*` from trusted peers (PROXY_HEADERS on)."""

    def __init__(self, config: Config) -> None:
        self.trusted = TrustedPeers(config.FORWARDED_ALLOW_IPS)

    def resolve(self, headers: list[tuple[bytes, bytes]], client: Address | None,
                scheme: str, server: Address | None) -> ForwardedView | None:
        """The request as the first untrusted hop sent it, or None to leave it as it is
        (the peer is not trusted, or it sent no usable forwarding field)."""
        if not self.trusted.trusts(client[0] if client else None):
            return None
        fields: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            if name in FORWARDED_FIELDS:
                fields.setdefault(name, []).append(value)
        if not fields:
            return None
        if b"forwarded" in fields:
            hop = self._forwarded_hop(fields[b"forwarded"])
        else:
            hop = self._x_forwarded_hop(fields)
        if hop is None:
            return None
        hop_client, proto, host, port, prefix = hop
        if hop_client is not None:
            client = hop_client
        if proto is not None:
            scheme = proto
        if host is not None or port is not None:
            server = _server(host, port, scheme, server)
        if host is not None:
            headers = [(name, value) for name, value in headers if name != b"host"]
            headers.append((b"host", host.encode("latin-1")))
        return ForwardedView(client, scheme, server, headers, prefix)

    def _x_forwarded_hop(self, fields: dict[bytes, list[bytes]]
                         ) -> tuple[Address | None, str | None, str | None, int | None, str]:
        chain = _items(fields.get(b"x-forwarded-for"))
        index = self._first_untrusted(chain)
        client = _client(chain[index]) if chain else None

        def aligned(name: bytes) -> str | None:
            # A value per hop when each proxy appended one; else the nearest proxy's.
            values = _items(fields.get(name))
            if not values:
                return None
            return values[index] if len(values) == len(chain) else values[-1]

        proto = _scheme(aligned(b"x-forwarded-proto"))
        host = _host(aligned(b"x-forwarded-host"))
        port_text = aligned(b"x-forwarded-port")
        port = int(port_text) if port_text and port_text.isdigit() and (
            int(port_text) <= 65535) else None
        prefix = _prefix(aligned(b"x-forwarded-prefix"))
        return client, proto, host, port, prefix

    def _forwarded_hop(self, values: list[bytes]
                       ) -> tuple[Address | None, str | None, str | None, int | None, str] | None:
        elements = [element for value in values for element in _forwarded_elements(value)]
        if not elements:
            return None
        index = self._first_untrusted([element.get("for", "") for element in elements])
        element = elements[index]
        client = _client(element["for"]) if "for" in element else None
        host = _host(element.get("host"))
        return client, _scheme(element.get("proto")), host, None, ""

    def _first_untrusted(self, chain: list[str]) -> int:
        """The index of the hop nearest to us that is not trusted (0 if all are)."""
        for index in range(len(chain) - 1, -1, -1):
            node = _node_host(chain[index])
            if node is None or not self.trusted.trusts(node):
                return index
        return 0


def _items(values: list[bytes] | None) -> list[str]:
    """The comma-separated items of a field's values (repeated fields join as one list)."""
    if not values:
        return []
    text = ",".join(value.decode("latin-1") for value in values)
    return [item.strip() for item in text.split(",") if item.strip()]


def _node_host(node: str) -> str | None:
    """The address part of a node ("192.0.2.1", "[2001:db8::1]:4711", "1.2.3.4:80"),
    or None for one that is not an address ("unknown", "_hidden")."""
    node = node.strip().strip('"')
    if node.startswith("["):
        end = node.find("]")
        return node[1:end] if end > 0 else None
    if node.count(":") == 1:
        node = node.partition(":")[0]
    try:
        ipaddress.ip_address(node)
    except ValueError:
        return None
    return node


def _client(node: str) -> Address | None:
    """The scope's client for a node: (address, port), port 0 when the proxy gave none."""
    node = node.strip().strip('"')
    host = _node_host(node)
    if host is None:
        return None
    port = 0
    rest = node[node.find("]") + 1:] if node.startswith("[") else (
        node.partition(":")[2] if node.count(":") == 1 else "")
    rest = rest.lstrip(":")
    if rest.isdigit() and int(rest) <= 65535:
        port = int(rest)
    return host, port


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    return _SCHEMES.get(value.strip().strip('"').lower())


def _host(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().strip('"')
    if not value or len(value) > 255 or not set(value) <= _HOST_CHARS:
        return None
    return value


def _prefix(value: str | None) -> str:
    """A path prefix the proxy stripped ("/api"); "" for none or a malformed one."""
    if not value:
        return ""
    value = value.strip().rstrip("/")
    if not value.startswith("/") or not value.isprintable() or "?" in value or "#" in value:
        return ""
    return value


def _server(host: str | None, port: int | None, scheme: str,
            server: Address | None) -> Address | None:
    """The scope's server: the host the client asked for (and the port it used)."""
    if host is None:
        return (server[0], port) if server is not None and port is not None else server
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1:]
        host_port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, _, host_port = host.partition(":")
    else:
        name, host_port = host, ""
    if port is None:
        port = int(host_port) if host_port.isdigit() and int(host_port) <= 65535 else (
            _DEFAULT_PORTS.get(scheme, 80))
    return (name, port)


def _forwarded_elements(value: bytes) -> list[dict[str, str]]:
    """The elements of one RFC 7239 `Forwarded` value, each a dict of its pairs
    (lower-case keys; quoted strings unquoted).  A malformed element is skipped."""
    text = value.decode("latin-1")
    elements: list[dict[str, str]] = []
    pairs: dict[str, str] = {}
    token = []
    quoted = False
    valid = True

    def end_pair() -> None:
        nonlocal valid
        pair = "".join(token).strip()
        token.clear()
        if not pair:
            return
        key, sep, val = pair.partition("=")
        if not sep or not key.strip():
            valid = False
            return
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"')
        pairs[key.strip().lower()] = val

    for char in text:
        if char == '"':
            quoted = not quoted
            token.append(char)
        elif quoted:
            token.append(char)
        elif char == ";":
            end_pair()
        elif char == ",":
            end_pair()
            if valid and pairs:
                elements.append(dict(pairs))
            pairs.clear()
            valid = True
        else:
            token.append(char)
    end_pair()
    if valid and pairs and not quoted:
        elements.append(dict(pairs))
    return elements
