"""An authoritative DNS server on loopback for tests (dnslib), over UDP and TCP on one port.

``DnsServer.zone`` maps a name to its records, ``[("TXT", "v=spf1 -all"), ("MX", (10,
"mx.example.com"))]``; a test changes it between queries. A name that is not in the zone is
NXDOMAIN. ``silent_dns_server`` binds a port and never answers (a resolver's timeout).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dnslib import MX, QTYPE, RCODE, RR, TXT, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

Zone = dict[str, list[tuple[str, Any]]]


def _rdata(rtype: str, value: Any) -> Any:
    if rtype == "TXT":
        data = value.encode()
        # One TXT record, its text cut into the 255-byte strings DNS carries (RFC 1035 3.3.14).
        return TXT([data[i : i + 255] for i in range(0, len(data), 255)] or [b""])
    if rtype == "MX":
        preference, host = value
        return MX(host, preference)
    raise ValueError(rtype)


@dataclass
class ZoneResolver(BaseResolver):  # type: ignore[misc]
    """Answers from ``zone``, authoritatively."""

    zone: Zone = field(default_factory=dict)

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        reply.header.aa = 1
        qname, qtype = request.q.qname, QTYPE[request.q.qtype]
        records = {DNSLabel(name): rrs for name, rrs in self.zone.items()}.get(qname)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value in records:
            if rtype == qtype:
                reply.add_answer(RR(qname, getattr(QTYPE, rtype), rdata=_rdata(rtype, value)))
        return reply


@dataclass
class DnsServer:
    """A running server: its address for ``--resolver`` and the zone it serves."""

    port: int
    resolver: ZoneResolver
    servers: list[DNSServer]

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def zone(self) -> Zone:
        """The records served, by name."""
        return self.resolver.zone

    @zone.setter
    def zone(self, zone: Zone) -> None:
        self.resolver.zone = zone

    def stop(self) -> None:
        """Shut both servers down."""
        for server in self.servers:
            server.stop()


def _free_udp_and_tcp_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port for both UDP and TCP")


def start_dns_server(zone: Zone | None = None) -> DnsServer:
    """Serve ``zone`` on a free loopback port, UDP and TCP, in threads."""
    resolver = ZoneResolver(zone or {})
    port = _free_udp_and_tcp_port()
    quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    servers = [
        DNSServer(resolver, address="127.0.0.1", port=port, tcp=tcp, logger=quiet)
        for tcp in (False, True)
    ]
    for server in servers:
        server.start_thread()
    return DnsServer(port, resolver, servers)


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """An authoritative DNS server on loopback with an empty zone (set ``.zone``)."""
    server = start_dns_server()
    yield server
    server.stop()


@pytest.fixture
def silent_dns_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a UDP socket that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"
