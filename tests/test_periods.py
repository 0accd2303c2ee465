"""Digest periods in local time, daylight saving included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from digest.periods import is_due, period_for

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Pacific/Chatham",
]


def test_spring_forward_hour_that_does_not_exist_moves_one_hour_later() -> None:
    # 2026-03-29 02:00 does not exist in Paris: clocks jump from 02:00 to 03:00 (01:00 UTC).
    p = period_for("daily", "Europe/Paris", 2, datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert p.key == "daily:2026-03-29"
    assert p.due == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert p.end - p.start == timedelta(hours=23)


def test_fall_back_day_has_25_hours_and_one_due_time() -> None:
    p = period_for("daily", "America/New_York", 1, datetime(2026, 11, 1, 12, tzinfo=UTC))
    assert p.end - p.start == timedelta(hours=25)
    assert p.due == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # the first 01:00, still EDT


def test_weekly_period_is_the_iso_week_in_local_time() -> None:
    # Sunday 23:30 in New York is already Monday in UTC; the week is still the local one.
    at = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)
    p = period_for("weekly", "America/New_York", 7, at, weekly_day="monday")
    assert p.key == "weekly:2026-W48"
    assert p.due == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@given(
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
    ),
    cadence=st.sampled_from(["daily", "weekly"]),
)
def test_every_instant_belongs_to_exactly_one_period_with_one_due_time(
    zone: str, hour: int, at: datetime, cadence: str
) -> None:
    p = period_for(cadence, zone, hour, at)
    assert p.start <= at < p.end
    assert p.start <= p.due < p.end
    # the instants just inside either edge share the key; just outside, they do not
    assert period_for(cadence, zone, hour, p.start).key == p.key
    assert period_for(cadence, zone, hour, p.end - timedelta(microseconds=1)).key == p.key
    assert period_for(cadence, zone, hour, p.end).key != p.key
    assert is_due(p, p.due) and not is_due(p, p.due - timedelta(seconds=1)) and not is_due(p, p.end)
