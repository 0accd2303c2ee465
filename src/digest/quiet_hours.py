"""Quiet hours: the part of a reader's local day in which no alert interrupts them (pure).

Written ``"22:00-07:00"`` (it may run over midnight) or ``"off"``. Everything here works in
the reader's zone, so a quiet night is the same hours of the clock in Tokyo and in Lima,
daylight-saving changes included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_SPAN = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_OFF = frozenset({"", "off", "none", "no"})


@dataclass(frozen=True)
class QuietHours:
    """A daily span of local time ``[start, end)``; ``start == end`` means none."""

    start: time
    end: time

    @classmethod
    def parse(cls, value: str) -> QuietHours:
        """``"22:00-07:00"``, or ``"off"``; ValueError with a sentence for anything else."""
        if value.strip().casefold() in _OFF:
            return cls(time(0), time(0))
        match = _SPAN.match(value)
        if not match:
            raise ValueError(
                f"quiet hours are HH:MM-HH:MM (e.g. 22:00-07:00) or off, not {value!r}"
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return cls(time(h1, m1), time(h2, m2))

    @property
    def off(self) -> bool:
        """No quiet hours at all."""
        return self.start == self.end

    @property
    def text(self) -> str:
        """The span as it is written and stored: ``"22:00-07:00"`` or ``"off"``."""
        return "off" if self.off else f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        """Whether the local clock time ``local`` is quiet."""
        if self.off:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def is_quiet(self, moment: datetime, zone: str) -> bool:
        """Whether ``moment`` (aware) falls in the quiet hours of ``zone``."""
        return self.contains(moment.astimezone(ZoneInfo(zone)).time().replace(tzinfo=None))

    def next_start(self, moment: datetime, zone: str) -> datetime | None:
        """The first moment after ``moment`` at which quiet hours begin in ``zone`` (UTC)."""
        if self.off:
            return None
        return _next_clock(moment, zone, self.start)

    def next_end(self, moment: datetime, zone: str) -> datetime | None:
        """When the quiet hours ``moment`` is in end (UTC); None when it is not quiet."""
        if not self.is_quiet(moment, zone):
            return None
        return _next_clock(moment, zone, self.end)


#: The default: no alert between ten at night and seven in the morning.
NIGHT = QuietHours(time(22), time(7))


def _next_clock(moment: datetime, zone: str, clock: time) -> datetime:
    """The first moment strictly after ``moment`` that reads ``clock`` on the local wall."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, clock, tzinfo=tz)
        # A wall time that does not exist (spring forward) resolves to the hour after it.
        candidate = candidate.astimezone(tz).astimezone(ZoneInfo("UTC"))
        if candidate > moment:
            return candidate
    raise ValueError(f"no {clock} after {moment} in {zone}")  # unreachable: a day has every clock


def local_day(moment: datetime, zone: str) -> tuple[datetime, datetime]:
    """The local day of ``zone`` that ``moment`` falls in, as ``[start, end)`` in UTC."""
    tz = ZoneInfo(zone)
    day = moment.astimezone(tz).date()
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(ZoneInfo("UTC"))
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(ZoneInfo("UTC"))
    return start, end
