"""Announcements: one-off mail to a newsletter's readers, written, scheduled, queued, cancelled.

The use cases the CLI and the admin API share. An announcement's mail goes through the outbox
like a digest's, set-wise (``delivery/announcement_outbox``), under the once-key ``"N/a:ID"``:
one copy per reader whatever runs twice, and never in place of a digest. It goes at once
(``send``), at one moment (``schedule_at``), or at an hour of each reader's own day
(``schedule_local``), which the scheduler's tick honours zone by zone (``queue_due``).
Each function runs in the caller's transaction and locks the announcement's row first, so two
processes sending one announcement queue it once, with one body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from digest import announcement_audience as reach
from digest import newsletters
from digest.announcement_rules import (
    CANCELLED,
    QUEUED,
    SCHEDULED,
    check_at,
    check_local,
    check_open,
    due_zones,
    local_moment,
    parse_day,
)
from digest.announcement_store import (
    Draft,
    Reach,
    audience_of,
    body_id,
    create,
    current_reach,
    deliveries,
    get,
    listed,
    plan,
    reach_of,
    revise,
    summary,
)
from digest.config import Settings
from digest.db import Database
from digest.delivery import announcement_outbox as mail
from digest.errors import (
    AnnouncementClosed,
    DigestError,
    NewsletterArchived,
    StoreUnavailable,
    first_line,
)
from digest.models_campaigns import Announcement
from digest.states import DeliveryStatus

# The faces (CLI, API) use announcements through this one module: its own use cases and the
# store's reads it passes on.
__all__ = [
    "Cancelled",
    "Draft",
    "Queued",
    "Reach",
    "audience_of",
    "cancel",
    "create",
    "current_reach",
    "deliveries",
    "get",
    "listed",
    "plan",
    "queue_due",
    "revise",
    "schedule_at",
    "schedule_local",
    "send",
    "summary",
    "tick",
]

#: Where a day's hour comes first: no zone is further ahead of UTC than +14:00.
EARLIEST_OFFSET = timedelta(hours=14)


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Queued:
    """What one send or tick did: mail added now, and the announcement's total."""

    added: int
    recipients: int
    status: str
    late_zones: list[str] = field(default_factory=list)  # local-hour zones already past


@dataclass(frozen=True)
class Cancelled:
    """What cancelling took back, and what had gone out already."""

    cancelled: int
    sent: int
    in_flight: int  # being sent at that moment: may still arrive


def _queue(
    session: Session, settings: Settings, row: Announcement, now: datetime, zones: list[str] | None
) -> int:
    """Queue the announcement for its audience (in ``zones`` only, unless None); rows added."""
    if not newsletters.hold_live(session, row.newsletter_id):
        raise NewsletterArchived(
            f"announcement #{row.id}'s newsletter is archived; it sends nothing more"
        )
    audience = audience_of(row)
    who = (
        reach.members(session, audience)
        if zones is None
        else reach.in_zones(session, audience, zones)
    )
    bid = body_id(session, settings, row)
    added = mail.enqueue_announcement(
        session,
        announcement_id=int(row.id or 0),
        newsletter_id=row.newsletter_id,
        body_id=bid,
        subscriber_filter=sa.and_(who, ~reach.queued_before(bid)),
        domain=settings.from_domain,
    )
    row.recipients += added
    row.updated_at = now
    return added


def _close(row: Announcement, now: datetime) -> None:
    row.status = QUEUED
    row.queued_at = now


def send(session: Session, settings: Settings, announcement_id: int, now: datetime) -> Queued:
    """Queue the announcement for its whole audience now, whatever its schedule said.

    Sending one that is already queued adds nothing (each reader has it once); a cancelled
    one is refused, and so is an audience that has come to match nobody.
    """
    row = get(session, announcement_id, lock=True)
    if row.status == CANCELLED:
        raise AnnouncementClosed(
            f"announcement #{announcement_id} was cancelled; it cannot be sent"
        )
    if row.status == QUEUED:
        return Queued(0, row.recipients, row.status)
    reach_of(session, audience_of(row))
    added = _queue(session, settings, row, now, None)
    _close(row, now)
    return Queued(added, row.recipients, row.status)


def schedule_at(session: Session, announcement_id: int, at: datetime, now: datetime) -> Queued:
    """Send the announcement to everyone at ``at`` (the scheduler's first tick after it)."""
    row = get(session, announcement_id, lock=True)
    check_open(row.status, "scheduled")
    reach_of(session, audience_of(row))
    row.send_at, row.local_hour, row.local_date = check_at(at, now), None, None
    row.status, row.updated_at = SCHEDULED, now
    return Queued(0, row.recipients, row.status)


def schedule_local(
    session: Session, announcement_id: int, hour: int, day: date | str, now: datetime
) -> Queued:
    """Send the announcement to each reader at ``hour``:00 on ``day`` in their own zone.

    Readers in zones where that hour has already passed get it at the next tick (listed in
    the answer); when it has passed in every reader's zone it is refused as in the past.
    """
    row = get(session, announcement_id, lock=True)
    check_open(row.status, "scheduled")
    day = parse_day(day) if isinstance(day, str) else day
    late = check_local(reach_of(session, audience_of(row)).zones, hour, day, now)
    row.send_at, row.local_hour, row.local_date = None, hour, day.isoformat()
    row.status, row.updated_at = SCHEDULED, now
    return Queued(0, row.recipients, row.status, late)


def _may_be_due(row: Announcement, now: datetime) -> bool:
    """Whether any reader's moment can have come: cheap, before the store is asked."""
    if row.send_at is not None:
        return row.send_at <= now
    if row.local_hour is None or row.local_date is None:
        return False
    return local_moment("UTC", row.local_hour, parse_day(row.local_date)) - EARLIEST_OFFSET <= now


def tick(session: Session, settings: Settings, announcement_id: int, now: datetime) -> Queued:
    """Queue what of a scheduled announcement is due at ``now``: everyone once its moment
    has come, or the readers of each zone whose local hour has come; it is ``queued`` once
    nobody is left waiting."""
    row = get(session, announcement_id, lock=True)
    if row.status != SCHEDULED or not _may_be_due(row, now):
        return Queued(0, row.recipients, row.status)
    if not newsletters.hold_live(session, row.newsletter_id):
        # Archived while it waited: it sends nothing more, so the announcement is over.
        row.status, row.cancelled_at, row.updated_at = CANCELLED, now, now
        log.info("announcement cancelled: its newsletter is archived", extra={"id": row.id})
        return Queued(0, row.recipients, row.status)
    if row.send_at is not None:
        added = _queue(session, settings, row, now, None)
        _close(row, now)
        return Queued(added, row.recipients, row.status)
    hour, day = int(row.local_hour or 0), parse_day(row.local_date or "")
    zones = reach.zones(session, audience_of(row))
    due = due_zones(zones, hour, day, now)
    added = _queue(session, settings, row, now, due) if due else 0
    if len(due) == len(zones):
        _close(row, now)
    return Queued(added, row.recipients, row.status)


def queue_due(db: Database, settings: Settings, now: datetime) -> int:
    """The scheduler's part: every scheduled announcement's due mail queued, each in its own
    transaction (one failing leaves the others queued); how many deliveries were added."""
    with db.transaction() as session:
        waiting = session.exec(
            select(Announcement.id).where(Announcement.status == SCHEDULED)
        ).all()
    added = 0
    for announcement_id in waiting:
        try:
            with db.transaction() as session:
                added += tick(session, settings, int(announcement_id or 0), now).added
        except StoreUnavailable:
            raise
        except (DigestError, SQLAlchemyError, ValueError) as exc:
            # A template removed since, a zone the store no longer knows: that one waits,
            # logged each tick; the others go.
            log.warning(
                "announcement not queued",
                extra={"announcement": announcement_id, "error": first_line(exc)},
            )
    return added


def cancel(session: Session, announcement_id: int, now: datetime) -> Cancelled:
    """Cancel the announcement: what is still queued is not sent; what went out is counted.

    Refused when it was cancelled before, or when all of its mail has already gone.
    """
    row = get(session, announcement_id, lock=True)
    if row.status == CANCELLED:
        raise AnnouncementClosed(f"announcement #{announcement_id} is already cancelled")
    key = mail.once_key(row.newsletter_id, int(row.id or 0))
    counts = mail.counts(session, key, row.body_id)
    waiting = sum(counts.get(s, 0) for s in mail.WAITING)
    in_flight = counts.get(DeliveryStatus.SENDING.value, 0)
    sent = counts.get(DeliveryStatus.SENT.value, 0)
    if row.status == QUEUED and not waiting:
        raise AnnouncementClosed(
            f"announcement #{announcement_id} has gone out already ({sent} sent, "
            f"{in_flight} being sent); nothing is left to cancel"
        )
    cancelled = mail.cancel_waiting(session, key, row.body_id) if row.body_id else 0
    row.status, row.cancelled_at, row.updated_at = CANCELLED, now, now
    return Cancelled(cancelled, sent, in_flight)
