"""Keeping tests that run on the real clock away from day boundaries."""

from __future__ import annotations

from datetime import datetime

MIDDAY = 12


def midday(now: datetime) -> tuple[str, int]:
    """A fixed-offset zone where it is between 12:00 and 13:00 at ``now`` (UTC), and 12.

    A daily subscriber in that zone with that send hour is due at ``now`` and stays due for the
    next 11 hours, whenever the test runs. With ``timezone="UTC"`` and ``send_hour=now.hour``,
    a run that crosses UTC midnight lands in a new period that is not due (and the first
    period's send-by time passes), so it fails at random near midnight.
    """
    offset = (MIDDAY - now.hour + 12) % 24 - 12  # hours east of UTC, -12..11
    # POSIX signs: Etc/GMT-3 is three hours east of UTC.
    return ("UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"), MIDDAY
