"""DNS look-ups for ``digest check`` (dnspython): TXT and MX records, or why there are none.

Only ``digest check`` looks DNS up; sending never does. A resolver that does not answer is
reported as a timeout, never as a missing record: "your SPF record is missing" sends an
operator to edit a zone that may be fine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.resolver

#: Seconds a look-up may take, retries included, unless the caller says otherwise.
DEFAULT_TIMEOUT = 5.0


class DnsTimeout(Exception):
    """The resolver did not answer in time."""


class DnsFailure(Exception):
    """The resolver answered with an error (SERVFAIL, refused), not with "no such record"."""


@dataclass(frozen=True)
class Mx:
    """One MX record."""

    preference: int
    host: str


class Lookup:
    """A resolver: the system's, or one at ``HOST[:PORT]`` (tests, or to ask another server)."""

    def __init__(self, server: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if server:
            host, port = split_server(server)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host]
            self.resolver.port = port
        else:
            self.resolver = dns.resolver.Resolver()
        # EDNS lets a 2048-bit DKIM key come back over UDP in one answer.
        self.resolver.use_edns(0, 0, 1232)
        self.resolver.timeout = timeout
        self.resolver.lifetime = timeout
        self.timeout = timeout

    def _answer(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.Timeout:
            raise DnsTimeout(f"no answer for {name} {rdtype} within {self.timeout:g} s") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsFailure(f"the DNS server failed to answer {name} {rdtype}: {exc}") from None
        except dns.exception.DNSException as exc:
            raise DnsFailure(f"{name} {rdtype}: {exc}") from None

    def txt(self, name: str) -> list[str]:
        """The TXT records at ``name``, each one string (its chunks joined); [] when none."""
        answer = self._answer(name, "TXT")
        if answer is None:
            return []
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
            for rdata in answer
        ]

    def mx(self, name: str) -> list[Mx]:
        """The MX records at ``name``, lowest preference first; [] when none."""
        answer = self._answer(name, "MX")
        if answer is None:
            return []
        found = [
            Mx(int(r.preference), r.exchange.to_text().rstrip("."))  # type: ignore[attr-defined]
            for r in answer
        ]
        return sorted(found, key=lambda m: m.preference)


def split_server(server: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"`` -> ("127.0.0.1", 5353); ``"::1"`` or ``"[::1]:53"`` for IPv6."""
    server = server.strip()
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":")
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
    else:
        host, port = server, ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    if not port:
        return host, 53
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {server!r}")
    return host, int(port)
