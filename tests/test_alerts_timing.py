"""When an alert may go in a zone (pure): never in quiet hours, never after it expires, never
past the local day whose budget it counts in."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from digest.alert_timing import zone_timing
from digest.quiet_hours import NIGHT, QuietHours, local_day

ZONES = ["UTC", "Asia/Tokyo", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"]
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
spans = st.builds(
    QuietHours,
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 30])),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 30])),
)


@given(
    quiet=spans,
    zone=st.sampled_from(ZONES),
    now=moments,
    expiry=st.integers(1, 48 * 60).map(lambda m: timedelta(minutes=m)),
)
def test_an_alert_goes_only_outside_quiet_hours_before_expiry_within_one_local_day(
    quiet: QuietHours, zone: str, now: datetime, expiry: timedelta
) -> None:
    expires_at = now + expiry
    timing = zone_timing(quiet, zone, now=now, expires_at=expires_at)
    if timing.planned is None:
        # Held only when it is quiet now and stays quiet until after the alert expires.
        end = quiet.next_end(now, zone)
        assert end is not None and end > expires_at
        return
    assert timing.send_by is not None
    assert now <= timing.planned <= timing.send_by <= expires_at
    assert not quiet.is_quiet(timing.planned, zone)
    quiet_again = quiet.next_start(timing.planned, zone)
    assert quiet_again is None or timing.send_by <= quiet_again
    assert (timing.day_start, timing.day_end) == local_day(timing.planned, zone)
    assert timing.send_by <= local_day(timing.planned, zone)[1]
    if not quiet.is_quiet(now, zone):
        assert timing.planned == now  # at once


def test_in_tokyos_night_an_alert_waits_for_seven_if_it_lasts_that_long() -> None:
    now = datetime(2026, 12, 1, 14, tzinfo=UTC)  # 23:00 in Tokyo
    assert zone_timing(NIGHT, "Asia/Tokyo", now=now, expires_at=now + timedelta(hours=3)).held
    waits = zone_timing(NIGHT, "Asia/Tokyo", now=now, expires_at=now + timedelta(hours=9))
    assert waits.planned == datetime(2026, 12, 1, 22, tzinfo=UTC)  # 07:00 in Tokyo
    assert waits.send_by == now + timedelta(hours=9)
