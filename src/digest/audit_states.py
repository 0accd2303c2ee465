"""What the audit log shows of a changed row as ``before`` and ``after``: the fields a person
changes (a reader's cadence, a post's featuring, an announcement's schedule), never the whole
row, and never a reader's address (the entry's target names them, or their hash once erased).

Shared by every face (CLI, admin API, desk), so one change reads the same whoever made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from digest import subscribers
from digest.errors import DigestError

if TYPE_CHECKING:
    from sqlmodel import Session

    from digest.alerts import AlertReport
    from digest.delivery.bounces import BounceTally
    from digest.models import Post
    from digest.models_campaigns import Announcement

#: A reader's fields an operator sets; ``before``/``after`` of ``subscriber.add``.
READER_FIELDS = (
    "status",
    "cadence",
    "topics",
    "timezone",
    "send_hour",
    "name",
    "alerts",
    "tracking_opt_out",  # engagement: "don't count my clicks"
)


def reader_state(session: Session, email: str, newsletter_id: int) -> dict[str, Any] | None:
    """What an operator may change of the address's reader of the newsletter, read before a
    change; None when there is none (or the address is not one: the change will say so)."""
    try:
        person = subscribers.find(session, email)
    except DigestError:
        return None
    if person is None:
        return None
    found = subscribers.subscription_of(session, int(person.id or 0), newsletter_id)
    return None if found is None else state_of(subscribers.Reader(person, found))


def state_of(reader: subscribers.Reader) -> dict[str, Any]:
    """What an operator may change of a reader."""
    values = reader.as_dict()
    return {key: values.get(key) for key in READER_FIELDS}


def featured_state(post: Post) -> dict[str, Any]:
    """The editor's word on a post: featured or not, in which newsletters, until when."""
    return {
        "featured": post.editor_featured,
        "newsletters": list(post.featured_in or []),
        "until": post.featured_until,
    }


def schedule_state(row: Announcement) -> dict[str, Any]:
    """An announcement's status and when it goes out."""
    return {
        "status": row.status,
        "send_at": row.send_at,
        "local_hour": row.local_hour,
        "local_date": row.local_date,
    }


def draft_fields(session: Session, row: Announcement) -> dict[str, Any]:
    """A new announcement: its subject and how many readers it would reach now."""
    from digest import announcement_audience, announcements

    readers = announcement_audience.count(session, announcements.audience_of(row))
    return {"subject": row.subject, "readers": readers}


def bounce_fields(tally: BounceTally) -> dict[str, int] | None:
    """What recording bounce reports did, for ``bounce.record``; None when every report was
    about mail or addresses that are not ours (nothing changed: nothing to record)."""
    if sum(tally.by_kind.values()) <= tally.unmatched:
        return None
    return tally.as_dict()


def alert_fields(report: AlertReport) -> dict[str, Any]:
    """What raising an alert did, for ``post.alert``."""
    return {
        "newsletter": report.newsletter,
        "alert": report.alert_id,
        "queued": report.queued,
        "held": report.held_budget + report.held_quiet,
    }
