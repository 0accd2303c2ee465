"""Reading SPF (RFC 7208) and DMARC (RFC 7489) records, pure: what they say or what is wrong."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_MECHANISM = re.compile(
    r"(?P<q>[+?~-]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?P<arg>:[^/\s]+)?(?P<cidr>/\d{1,3}(?://\d{1,3})?|//\d{1,3})?",
    re.IGNORECASE,
)
_MODIFIER = re.compile(r"[a-z][a-z0-9_.-]*=\S*", re.IGNORECASE)
# Mechanisms that cannot go without an argument.
_NEEDS_ARG = {"include", "exists", "ip4", "ip6"}
# Terms that cost the receiver a DNS look-up (RFC 7208 4.6.4), redirect= too.
_LOOKUPS = {"include", "a", "mx", "ptr", "exists"}
#: More look-ups than this and receivers give up: a permanent error, as if there were no SPF.
SPF_LOOKUP_LIMIT = 10


class RecordError(ValueError):
    """A record that a receiver would not accept, and why."""


def is_spf(text: str) -> bool:
    """Whether a TXT record is an SPF record (``v=spf1`` then a space or nothing)."""
    lowered = text.strip().lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


@dataclass(frozen=True)
class Spf:
    """An SPF record that parsed: its final ``all`` qualifier, if any, its redirect, and the
    DNS look-ups it costs itself and the domains whose records it pulls in."""

    all_qualifier: str | None  # "+", "-", "~", "?" or None when there is no "all"
    redirect: str | None
    lookups: int = 0
    includes: tuple[str, ...] = ()  # include: and redirect= domains, in order


def parse_spf(text: str) -> Spf:
    """Parse an SPF record; RecordError naming the first term a receiver would reject."""
    terms = text.split()[1:]
    qualifier: str | None = None
    redirect: str | None = None
    lookups = 0
    includes: list[str] = []
    for term in terms:
        match = _MECHANISM.fullmatch(term)
        if match:
            name = match["name"].lower()
            arg = (match["arg"] or "")[1:]
            if name in _NEEDS_ARG and not arg:
                raise RecordError(f"{term!r} needs an argument")
            if name in ("ip4", "ip6"):
                _check_network(term, arg + (match["cidr"] or ""))
            if name == "all":
                qualifier = match["q"] or "+"
            lookups += name in _LOOKUPS
            if name == "include":
                includes.append(arg.lower())
            continue
        if _MODIFIER.fullmatch(term):
            key, _, value = term.partition("=")
            if key.lower() == "redirect":
                redirect = value
                lookups += 1
                includes.append(value.lower())
            continue
        raise RecordError(f"{term!r} is not an SPF mechanism")
    return Spf(qualifier, redirect, lookups, tuple(includes))


def _check_network(term: str, value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise RecordError(f"{term!r} is not an address or network") from None


@dataclass(frozen=True)
class Dmarc:
    """A DMARC record: the policy and whether alignment is strict for DKIM and SPF."""

    policy: str
    strict_dkim: bool
    strict_spf: bool


def parse_dmarc(text: str) -> Dmarc:
    """Parse a DMARC record; RecordError when it has no valid ``v=DMARC1`` and ``p=``."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            tags[key.strip().lower()] = value.strip()
    if tags.get("v", "").upper() != "DMARC1" or not text.strip().lower().startswith("v="):
        raise RecordError("it does not start with v=DMARC1")
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        raise RecordError(f"p={policy or '(missing)'} is not none, quarantine or reject")
    return Dmarc(
        policy, tags.get("adkim", "r").lower() == "s", tags.get("aspf", "r").lower() == "s"
    )
