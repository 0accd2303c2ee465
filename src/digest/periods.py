"""Digest periods in a subscriber's own timezone: which local day or ISO week it is, when the
digest is due, and when it must have gone out.

Pure functions over aware datetimes. The period key is what the store makes unique per
subscriber, so at most one digest goes to a person per local day (daily) or ISO week (weekly),
whatever runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.states import Cadence

#: The names ``DIGEST_WEEKLY_DAY`` takes, in ISO order (Monday first).
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class Period:
    """One local day or ISO week of one subscriber."""

    key: str  # "daily:2026-11-29" or "weekly:2026-W48"
    start: datetime  # UTC, local midnight at the start
    end: datetime  # UTC, local midnight at the end: the send-by deadline
    due: datetime  # UTC, the local send hour on the send day


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_time(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of ``hour``:00 on ``day`` in ``zone``.

    On the night clocks go forward an hour that does not exist (02:30 in Europe/Paris in March)
    lands one hour later, at the first instant that does; on the night they go back the first of
    the two occurrences is taken. Either way there is exactly one instant per day.
    """
    # zoneinfo reads a nonexistent wall time with the offset in force before the change, which
    # is exactly "one hour later" once converted; fold=0 picks the first of a repeated hour.
    return datetime.combine(day, time(hour), tzinfo=zone).replace(fold=0).astimezone(UTC)


def period_for(
    cadence: str, zone_name: str, send_hour: int, at: datetime, *, weekly_day: str = "monday"
) -> Period:
    """The period of ``cadence`` that contains ``at`` for a subscriber in ``zone_name``."""
    zone = ZoneInfo(zone_name)
    local = at.astimezone(zone)
    if Cadence(cadence) is Cadence.DAILY:
        day = local.date()
        start, end = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
        return Period(f"daily:{day.isoformat()}", start, end, local_time(day, send_hour, zone))
    iso = local.date().isocalendar()
    monday = local.date() - timedelta(days=iso.weekday - 1)
    send_day = monday + timedelta(days=WEEKDAYS.index(weekly_day))
    return Period(
        f"weekly:{iso.year}-W{iso.week:02d}",
        local_midnight(monday, zone),
        local_midnight(monday + timedelta(days=7), zone),
        local_time(send_day, send_hour, zone),
    )


def first_due(
    cadence: str,
    zone_name: str,
    send_hour: int,
    now: datetime,
    *,
    joined: datetime | None = None,
    weekly_day: str = "monday",
) -> datetime:
    """When the scheduler first sends the digest of a reader active since ``joined`` (default
    ``now``) who has had none yet, as seen at ``now`` (UTC).

    The rule of ``planning.slot_filter``: this period's send hour if they were active by then
    (at once when that hour has passed: it was missed), else the next period's; a reader who
    joins after their hour waits for the next one.
    """
    period = period_for(cadence, zone_name, send_hour, now, weekly_day=weekly_day)
    if (joined or now) <= period.due:
        return max(period.due, now)
    return period_for(cadence, zone_name, send_hour, period.end, weekly_day=weekly_day).due


def local_words(at: datetime, zone_name: str) -> str:
    """``at`` as a reader reads it: "Tuesday 2 December at 07:00 (Europe/Paris)"."""
    local = at.astimezone(ZoneInfo(zone_name))
    day = f"{WEEKDAYS[local.weekday()].title()} {local.day} {_MONTHS[local.month - 1]}"
    return f"{day} at {local:%H:%M} ({zone_name})"


def cadence_length(cadence: str) -> timedelta:
    """How far back a first digest looks: one day or one week."""
    return timedelta(days=1) if Cadence(cadence) is Cadence.DAILY else timedelta(days=7)


def is_due(period: Period, now: datetime) -> bool:
    """Whether the digest of this period may go out now: past its hour, before its end."""
    return period.due <= now < period.end


def check_timezone(name: str) -> ZoneInfo:
    """The zone of an IANA name, or ValueError naming what is wrong."""
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: "Europe" or "Etc" name folders of the zone database, not zones.
        raise ValueError(f"unknown timezone {name!r} (use an IANA name like Europe/Paris)") from exc
