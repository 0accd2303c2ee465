"""The addresses a feed is never fetched from: the IETF special-purpose registries (pure).

IANA's IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates) list the
blocks that are not ordinary public addresses; every block there that is not globally
reachable is refused, as is any IPv6 address outside global unicast space. Four IPv6 forms
carry an IPv4 address inside (IPv4-mapped, NAT64's well-known prefix, 6to4 and Teredo): the
packets end up at that IPv4 address, so it is judged instead of the wrapper.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPV4_REFUSED: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "'this network' (RFC 791)"),
        ("10.0.0.0/8", "private-use (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("172.16.0.0/12", "private-use (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation (RFC 5737)"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private-use (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("198.51.100.0/24", "documentation (RFC 5737)"),
        ("203.0.113.0/24", "documentation (RFC 5737)"),
        # Multicast is in no special-purpose registry, but no feed is served from a group.
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("255.255.255.255/32", "limited broadcast (RFC 919)"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
    )
)

IPV6_REFUSED: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified (RFC 4291)"),
        ("::1/128", "loopback (RFC 4291)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
        ("100::/64", "discard-only (RFC 6666)"),
        # Teredo (2001::/32) lies inside, and is judged by its IPv4 addresses before this.
        ("2001::/23", "IETF protocol assignments (RFC 2928)"),
        ("2001:db8::/32", "documentation (RFC 3849)"),
        ("3fff::/20", "documentation (RFC 9637)"),
        ("5f00::/16", "segment routing (RFC 9602)"),
        ("fc00::/7", "unique-local (RFC 4193)"),
        ("fe80::/10", "link-local (RFC 4291)"),
        ("fec0::/10", "site-local (RFC 3879)"),
        ("ff00::/8", "multicast (RFC 4291)"),
    )
)

# RFC 4291 section 2.4: outside 2000::/3 nothing is a public unicast address (IPv4-compatible
# ::a.b.c.d and SIIT's ::ffff:0:a.b.c.d included).
GLOBAL_UNICAST = IPv6Network("2000::/3")
NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
SIX_TO_FOUR = IPv6Network("2002::/16")  # RFC 3056: 2002:V4ADDR::/48
TEREDO = IPv6Network("2001::/32")  # RFC 4380: the server's IPv4, then the client's inverted
_LOW32 = 0xFFFFFFFF


def inner_ipv4(ip: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """The IPv4 addresses an IPv6 address leads to, each with the name of its form."""
    value = int(ip)
    if ip.ipv4_mapped is not None:
        return [("IPv4-mapped", ip.ipv4_mapped)]
    if ip in NAT64:
        return [("NAT64", IPv4Address(value & _LOW32))]
    if ip in SIX_TO_FOUR:
        return [("6to4", IPv4Address((value >> 80) & _LOW32))]
    if ip in TEREDO:
        return [
            ("Teredo server", IPv4Address((value >> 64) & _LOW32)),
            # The client's address is sent obfuscated, every bit flipped.
            ("Teredo client", IPv4Address(~value & _LOW32)),
        ]
    return []


def refusal(address: str) -> str | None:
    """Why an IP address is not a public one a feed may be fetched from, or None if it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, IPv4Address):
        return next((why for net, why in IPV4_REFUSED if ip in net), None)
    inner = inner_ipv4(ip)
    if inner:
        for form, v4 in inner:
            why = refusal(str(v4))
            if why is not None:
                return f"{form} {v4}: {why}"
        return None
    why = next((why for net, why in IPV6_REFUSED if ip in net), None)
    if why is None and ip not in GLOBAL_UNICAST:
        why = "not a global unicast address (RFC 4291)"
    return why
