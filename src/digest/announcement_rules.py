"""The rules of an announcement, pure: what a valid one is, who it is for, and when each reader
gets it (at once, at one moment, or at an hour of their own day).

No store and no clock here: ``announcements.py`` reads the rows and the time and asks these
functions, which the tests step through (``tests/test_announce_rules.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from digest.addresses import normalize_email
from digest.errors import AnnouncementClosed, InvalidEmail, InvalidInput, ScheduleInPast
from digest.periods import local_time
from digest.subscriber_fields import parse_cadence, parse_topics

#: The states of an announcement: written, waiting for its time, all its mail in the outbox.
DRAFT, SCHEDULED, QUEUED, CANCELLED = "draft", "scheduled", "queued", "cancelled"
MAX_SUBJECT = 998  # RFC 5322's line limit, as the column


@dataclass(frozen=True)
class Audience:
    """Who an announcement is for: a newsletter's active readers, narrowed.

    Empty ``topics`` or ``addresses`` and None elsewhere narrow nothing. A reader with no
    topics of their own takes every topic, so any topic list includes them.
    """

    newsletter_id: int
    topics: tuple[str, ...] = ()
    cadence: str | None = None
    joined_after: datetime | None = None  # active since at or after this instant ...
    joined_before: datetime | None = None  # ... and before this one
    addresses: tuple[str, ...] = ()


def check_subject(subject: str | None) -> str:
    """The subject on one line; InvalidInput when it is missing or blank."""
    text = " ".join((subject or "").split())
    if not text:
        raise InvalidInput("an announcement needs a subject (--subject)")
    if len(text) > MAX_SUBJECT:
        raise InvalidInput(f"the subject is longer than {MAX_SUBJECT} characters")
    return text


def check_body(markdown: str | None, template: str | None) -> str:
    """The Markdown body; InvalidInput when it is empty and no template set stands in for it."""
    body = (markdown or "").strip("\n")
    if not body.strip() and not template:
        raise InvalidInput("the announcement's body is empty")
    return body


def check_template(name: str | None) -> str | None:
    """A template set's name (letters, digits, ``_`` and ``-``), or None."""
    if name is None or not name.strip():
        return None
    text = name.strip()
    if not all(c.isalnum() or c in "_-" for c in text) or len(text) > 100:
        raise InvalidInput(f"a template set is named with letters, digits, _ and -, not {name!r}")
    return text


def parse_day(value: str) -> date:
    """A day written ``YYYY-MM-DD``; InvalidInput otherwise."""
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise InvalidInput(f"a date is written YYYY-MM-DD, not {value!r}") from None


def parse_moment(value: str) -> datetime:
    """An ISO 8601 moment in UTC; one without an offset is read as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise InvalidInput(
            f"a time is written in ISO 8601 (2026-12-24T09:00Z), not {value!r}"
        ) from None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last day there is
        raise InvalidInput(f"{value!r} is out of range") from None


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in UTC: what ``--joined-after``/``--joined-before`` mean."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def audience(
    newsletter_id: int,
    *,
    topics: str | Iterable[str] | None = None,
    cadence: str | None = None,
    joined_after: date | None = None,
    joined_before: date | None = None,
    addresses: Iterable[str] = (),
) -> Audience:
    """The audience from what an operator typed, checked (addresses already normalised)."""
    if joined_after and joined_before and joined_before <= joined_after:
        raise InvalidInput("--joined-before must be after --joined-after")
    return Audience(
        newsletter_id,
        tuple(parse_topics(topics)),
        parse_cadence(cadence, "") or None,
        day_start(joined_after) if joined_after else None,
        day_start(joined_before) if joined_before else None,
        tuple(dict.fromkeys(addresses)),
    )


def check_hour(hour: int) -> int:
    """A local hour, 0 to 23."""
    if not 0 <= hour <= 23:
        raise InvalidInput(f"a local hour is 0 to 23, not {hour}")
    return hour


def local_moment(zone: str, hour: int, day: date) -> datetime:
    """When ``hour``:00 on ``day`` comes in ``zone`` (UTC), as a digest's send hour does."""
    return local_time(day, hour, ZoneInfo(zone))


def due_zones(zones: Iterable[str], hour: int, day: date, now: datetime) -> list[str]:
    """The zones in which ``hour``:00 on ``day`` has come by ``now``."""
    return sorted(z for z in set(zones) if local_moment(z, hour, day) <= now)


def check_at(at: datetime, now: datetime) -> datetime:
    """A send time for everyone at once; ScheduleInPast when it has gone."""
    if at < now:
        raise ScheduleInPast(f"{at:%Y-%m-%d %H:%M} UTC has passed; pick a later time or send now")
    return at


def check_local(zones: Iterable[str], hour: int, day: date, now: datetime) -> list[str]:
    """The readers' zones in which the hour has already passed (they get it at once);
    ScheduleInPast when it has passed in every one of them."""
    check_hour(hour)
    known = set(zones)
    late = due_zones(known, hour, day, now)
    if known and len(late) == len(known):
        raise ScheduleInPast(
            f"{hour:02d}:00 on {day.isoformat()} has passed in every reader's timezone; "
            "pick a later day or send now"
        )
    return late


def check_open(status: str, what: str) -> None:
    """An announcement that may still be scheduled or sent; AnnouncementClosed otherwise."""
    if status == CANCELLED:
        raise AnnouncementClosed(f"it was cancelled; it cannot be {what}")
    if status == QUEUED:
        raise AnnouncementClosed(f"it is already queued; it cannot be {what} again")


def parse_addresses(lines: Iterable[str]) -> list[str]:
    """Addresses from a file, one per line (blank lines and ``#`` comments skipped), normalised
    and de-duplicated; InvalidInput naming the first bad line."""
    found: dict[str, None] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            found[normalize_email(text)] = None
        except InvalidEmail as exc:
            raise InvalidInput(f"line {number}: {text!r}: {exc}") from None
    if not found:
        raise InvalidInput("the addresses file lists no address")
    return list(found)
