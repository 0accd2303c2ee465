"""When an alert may go to the readers of one timezone (pure): at once, at the end of their
quiet hours, or not at all; and the moment after which it must not go any more.

Decided once per zone, not per reader: everyone in a zone shares the clock that quiet hours and
the local day are read on. The send-by time is what keeps the promises when sending is late
(a worker down, a long queue): the outbox never sends a row past it (``outbox.claim`` skips
it), so no alert goes out in quiet hours, after it expired, or on another local day than the
one whose interruption budget it was counted in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.quiet_hours import QuietHours, local_day

#: What follows a newsletter's id in the once-key of its alerts' deliveries: ``"2/alert:17"``.
ALERT_KEY = "alert:"


def alert_key_prefix(newsletter_id: int) -> str:
    """The start of every once-key of the newsletter's alerts (``"2/alert:"``)."""
    return f"{newsletter_id}/{ALERT_KEY}"


def once_key(newsletter_id: int, alert_id: int) -> str:
    """The once-key of an alert's deliveries: ``"1/alert:3"``."""
    return f"{alert_key_prefix(newsletter_id)}{alert_id}"


@dataclass(frozen=True)
class ZoneTiming:
    """The alert in one zone: sent from ``planned`` until ``send_by``, or held (quiet hours)."""

    zone: str
    planned: datetime | None  # None: its quiet hours outlast the alert; held for everyone
    send_by: datetime | None
    # The local day of ``planned`` ([start, end) in UTC): the day its budget counts in.
    day_start: datetime | None = None
    day_end: datetime | None = None

    @property
    def held(self) -> bool:
        """Every reader of the zone is held back by quiet hours."""
        return self.planned is None


def zone_timing(quiet: QuietHours, zone: str, *, now: datetime, expires_at: datetime) -> ZoneTiming:
    """When an alert raised at ``now`` and void after ``expires_at`` goes to readers in ``zone``.

    In quiet hours it waits for their end if that comes before it expires, else it is held.
    It must then go before the earliest of: its expiry, the next quiet hours, the end of the
    local day it was planned for.
    """
    planned = now
    if quiet.is_quiet(now, zone):
        end = quiet.next_end(now, zone)
        if end is None or end > expires_at:
            return ZoneTiming(zone, None, None)
        planned = end
    day_start, day_end = local_day(planned, zone)
    limits = [expires_at, day_end]
    quiet_again = quiet.next_start(planned, zone)
    if quiet_again is not None:
        limits.append(quiet_again)
    return ZoneTiming(zone, planned, min(limits), day_start, day_end)
