"""The pure rules of announcements: checks, the local-hour schedule (a property over zones and
moments), and the Markdown body as safe HTML and readable text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.announcement_rules import (
    audience,
    check_at,
    check_body,
    check_local,
    check_subject,
    due_zones,
    local_moment,
    parse_addresses,
    parse_moment,
)
from digest.compose.announcement import markdown_html
from digest.compose.readable import readable_text
from digest.errors import InvalidInput, ScheduleInPast

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Australia/Lord_Howe",
    "America/St_Johns",
]
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31))
moments = st.datetimes(
    min_value=datetime(2025, 12, 25), max_value=datetime(2029, 1, 5), timezones=st.just(UTC)
)


@given(
    zones=st.lists(st.sampled_from(ZONES), min_size=1, unique=True),
    hour=st.integers(0, 23),
    day=days,
    now=moments,
)
def test_each_zone_is_due_once_its_own_hour_has_come_and_stays_due(
    zones: list[str], hour: int, day: date, now: datetime
) -> None:
    due = due_zones(zones, hour, day, now)
    for zone in zones:
        moment = local_moment(zone, hour, day)
        # The moment is that hour of that day on the zone's own clock (or the first instant
        # after a skipped hour), and a zone is due exactly from it on.
        local = moment.astimezone(ZoneInfo(zone))
        assert local.date() == day and local.hour in (hour, (hour + 1) % 24)
        assert (zone in due) == (moment <= now)
        assert zone in due_zones(zones, hour, day, max(now, moment) + timedelta(minutes=1))
    try:
        late = check_local(zones, hour, day, now)
    except ScheduleInPast:
        assert sorted(due) == sorted(zones)  # refused only when every zone has passed
    else:
        assert late == due and len(late) < len(zones)


def test_a_skipped_hour_goes_at_the_first_instant_after_it() -> None:
    # 02:00 on 29 March 2026 does not exist in Paris: the clocks go from 02:00 to 03:00.
    assert local_moment("Europe/Paris", 2, date(2026, 3, 29)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


def test_checks_say_what_is_wrong() -> None:
    assert check_subject("  Big\nnews ") == "Big news"
    with pytest.raises(InvalidInput, match="subject"):
        check_subject(None)
    with pytest.raises(InvalidInput, match="empty"):
        check_body("  \n", None)
    assert check_body("", "fundraiser") == ""  # a template set stands in for the body
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with pytest.raises(ScheduleInPast, match="has passed"):
        check_at(now - timedelta(seconds=1), now)
    assert parse_moment("2026-12-24T09:00") == datetime(2026, 12, 24, 9, tzinfo=UTC)
    assert parse_moment("2026-12-24T10:00+01:00") == datetime(2026, 12, 24, 9, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="ISO 8601"):
        parse_moment("tomorrow")
    with pytest.raises(InvalidInput, match="after"):
        audience(1, joined_after=date(2026, 2, 1), joined_before=date(2026, 1, 1))
    assert parse_addresses(
        ["# team", "Ann@Example.com", "", "ann@example.com", "bo@example.org"]
    ) == [
        "ann@example.com",
        "bo@example.org",
    ]
    with pytest.raises(InvalidInput, match="line 2"):
        parse_addresses(["ok@example.com", "not an address"])


def test_raw_html_in_markdown_goes_through_the_feeds_allowlist() -> None:
    html = markdown_html(
        "Hello <script>alert('x')</script>**world**\n\n"
        '<p onclick="steal()">Click <a href="javascript:alert(1)">here</a></p>\n\n'
        "[home](/about) <iframe src='https://evil.example'></iframe>",
        "https://news.example.com",
    )
    assert "<strong>world</strong>" in html
    for gone in ("script", "alert", "onclick", "javascript:", "iframe"):
        assert gone not in html
    assert 'href="https://news.example.com/about"' in html  # relative links made absolute


def test_the_text_part_reads_like_the_html() -> None:
    html = markdown_html(
        "# New podcast\n\nListen to [episode one](https://pod.example.com/1) today.\n\n"
        "- first\n- second\n\n1. one\n2. two\n\n> Quoted\n\nSee https://example.com\n",
        None,
    )
    assert readable_text(html) == (
        "New podcast\n\n"
        "Listen to episode one (https://pod.example.com/1) today.\n\n"
        "- first\n- second\n\n"
        "1. one\n2. two\n\n"
        "> Quoted\n\n"
        "See https://example.com"
    )
