"""Digest periods in local time, daylight saving included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from digest.periods import first_due, is_due, period_for

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
INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)
CADENCES = st.sampled_from(["daily", "weekly"])
HOURS = st.integers(0, 23)


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


@given(zone=st.sampled_from(ZONES), hour=HOURS, at=INSTANTS, cadence=CADENCES)
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


def test_a_reader_who_joins_before_their_hour_gets_that_days_digest() -> None:
    joined = datetime(2026, 6, 1, 3, tzinfo=UTC)  # 05:00 in Paris, before the 07:00 hour
    assert first_due("daily", "Europe/Paris", 7, joined) == datetime(2026, 6, 1, 5, tzinfo=UTC)


def test_a_reader_who_joins_after_their_hour_waits_for_the_next_one() -> None:
    joined = datetime(2026, 6, 1, 5, tzinfo=UTC)  # 14:00 in Tokyo
    assert first_due("daily", "Asia/Tokyo", 7, joined) == datetime(2026, 6, 1, 22, tzinfo=UTC)
    # Weekly on Mondays: the next Monday's hour, a week on.
    weekly = first_due("weekly", "Asia/Tokyo", 7, joined, weekly_day="monday")
    assert weekly == datetime(2026, 6, 7, 22, tzinfo=UTC)


def test_a_reader_active_at_the_hour_who_missed_it_gets_it_at_once() -> None:
    # Active since 06:00 UTC, and the 07:00 UTC digest did not go (digest was down): due now.
    now = datetime(2026, 6, 1, 9, tzinfo=UTC)
    joined = datetime(2026, 6, 1, 6, tzinfo=UTC)
    assert first_due("daily", "UTC", 7, now, joined=joined) == now


@given(zone=st.sampled_from(ZONES), hour=HOURS, now=INSTANTS, cadence=CADENCES)
def test_a_new_readers_first_digest_is_the_first_due_time_after_they_join(
    zone: str, hour: int, now: datetime, cadence: str
) -> None:
    at = first_due(cadence, zone, hour, now)
    assert at >= now
    period = period_for(cadence, zone, hour, at)
    assert period.due == at and is_due(period, at)
    # No due time of their own lies between joining and this one.
    assert now > period_for(cadence, zone, hour, period.start - timedelta(seconds=1)).due
