"""The IANA timezones a reader picks from, grouped by region as people look for them (pure).

Read from the zone database ``zoneinfo`` uses (the system's or the ``tzdata`` package), once
per process. Only ``Region/City`` names are offered, plus UTC: the old aliases (``US/Eastern``,
``Etc/GMT+5``, ``EST5EDT``) still parse everywhere, they are just not listed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from zoneinfo import available_timezones

#: Listed first, alone: the zone of no place.
UTC = "UTC"
#: The regions of the zone database's own names, in the order a select lists them.
REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@dataclass(frozen=True)
class Zone:
    """One zone as a list shows it: its IANA name, and the place it is named after."""

    name: str  # "America/Argentina/Buenos_Aires"
    place: str  # "Argentina / Buenos Aires"


@dataclass(frozen=True)
class ZoneGroup:
    """The zones of one region, by place."""

    region: str
    zones: tuple[Zone, ...]


def place_of(name: str) -> str:
    """The readable place of a zone name: its region cut, underscores as spaces."""
    _region, _slash, rest = name.partition("/")
    return (rest or name).replace("_", " ").replace("/", " / ")


@functools.cache
def zone_groups() -> tuple[ZoneGroup, ...]:
    """Every ``Region/City`` zone of the database, grouped by region, each group by place."""
    names = available_timezones()
    groups = []
    for region in REGIONS:
        members = sorted(
            (Zone(n, place_of(n)) for n in names if n.startswith(region + "/")),
            key=lambda z: z.place.casefold(),
        )
        if members:
            groups.append(ZoneGroup(region, tuple(members)))
    return tuple(groups)


def is_listed(name: str) -> bool:
    """Whether a list offers this name: UTC, or one of ``zone_groups`` (else a page adds it
    as the reader's own)."""
    return name == UTC or any(z.name == name for g in zone_groups() for z in g.zones)
