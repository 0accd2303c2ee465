"""Editions, alerts and announcements whose mail is all done: ``completed_at`` set once, and
``edition.sent`` / ``alert.sent`` reported with what became of their deliveries (announcements
have no event in the contract: their time is set for the reports alone).

Done means no reader can still be added and no delivery is left queued, being sent or deferred
(a deferred one may still go). A scheduled edition's slot is its UTC hour: later ticks in that
hour add readers to it (a +5:30 zone at :30), so it is not done before the hour (and a tick's
margin) is over (``webhook_rules.slot_closes``). An alert queues or holds every reader in the
one transaction that raises it, and an announcement is ``queued`` once its last zone is, so
theirs is the deliveries alone. One that sent nothing (every row skipped or held: no news, a
used-up budget) is completed without an event: no ``edition.sent`` with 0 sent every hour.

The check runs every minute in each worker (``webhook_sender``), from as many processes as run;
``UPDATE ... WHERE completed_at IS NULL`` lets exactly one of them complete each and report it,
in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest import webhook_events
from digest import webhook_rules as rules
from digest.announcement_rules import QUEUED as ANNOUNCEMENT_QUEUED
from digest.models import Delivery, Edition
from digest.models_campaigns import Alert, Announcement
from digest.states import DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
AL = Alert.__table__  # type: ignore[attr-defined]
AN = Announcement.__table__  # type: ignore[attr-defined]
_UNFINISHED = (
    DeliveryStatus.QUEUED.value,
    DeliveryStatus.SENDING.value,
    DeliveryStatus.DEFERRED.value,
)
#: Rows of readers it was never sent to: nothing new for them, or held back (alerts).
_NOT_FOR_SENDING = tuple(
    s.value for s in (DeliveryStatus.SKIPPED, DeliveryStatus.HELD, DeliveryStatus.FOLDED)
)
#: Older ones are not looked at again: mail gives up within days (DIGEST_RETRY_DEADLINE_HOURS),
#: and an edition of last year must not be reported because this check is new.
LOOK_BACK = timedelta(days=7)


def complete_due(session: Session, now: datetime) -> tuple[int, int]:
    """Complete every recent edition and alert whose mail is all done, reporting those that
    sent something; how many of each were reported."""
    since = now - LOOK_BACK
    editions = session.execute(
        sa.select(E.c.id, E.c.newsletter_id, E.c.key, E.c.is_test, E.c.edition_at).where(
            E.c.completed_at.is_(None), E.c.created_at >= since
        )
    ).all()
    done_editions = 0
    for ed in editions:
        if now < rules.slot_closes(ed.key, ed.edition_at):
            continue  # a later tick of its hour may still add readers
        theirs = D.c.edition_id == ed.id
        if _unfinished(session, theirs):
            continue
        if not _claim(session, E, ed.id, now):
            continue  # another process completed it since we looked
        if not ed.is_test and _any(session, theirs, D.c.status.not_in(_NOT_FOR_SENDING)):
            done_editions += 1
            slug = webhook_events.slug_of(session, ed.newsletter_id)
            head = {"edition_id": ed.id, "newsletter": slug, "key": ed.key}
            _report(session, rules.EDITION_SENT, head, theirs, now)
    alerts = session.execute(
        sa.select(AL.c.id, AL.c.newsletter_id, AL.c.post_id, AL.c.body_id).where(
            AL.c.completed_at.is_(None), AL.c.raised_at >= since, AL.c.body_id.is_not(None)
        )
    ).all()
    done_alerts = 0
    for alert in alerts:
        # Every delivery of an alert carries its one body (indexed).
        theirs = D.c.body_id == alert.body_id
        if _unfinished(session, theirs) or not _claim(session, AL, alert.id, now):
            continue
        if not _any(session, theirs, D.c.status.not_in(_NOT_FOR_SENDING)):
            continue
        done_alerts += 1
        slug = webhook_events.slug_of(session, alert.newsletter_id)
        head = {"alert_id": alert.id, "newsletter": slug, "post_id": alert.post_id}
        _report(session, rules.ALERT_SENT, head, theirs, now)
    _complete_announcements(session, since, now)
    return done_editions, done_alerts


def _complete_announcements(session: Session, since: datetime, now: datetime) -> None:
    # Queued means all its mail is in the outbox (a local-hour one, zone by zone, is queued
    # once the last zone is); each of its deliveries carries its one body.
    found = session.execute(
        sa.select(AN.c.id, AN.c.body_id).where(
            AN.c.completed_at.is_(None),
            AN.c.status == ANNOUNCEMENT_QUEUED,
            AN.c.queued_at >= since,
            AN.c.body_id.is_not(None),
        )
    ).all()
    for announcement in found:
        if not _unfinished(session, D.c.body_id == announcement.body_id):
            _claim(session, AN, announcement.id, now)


def _report(
    session: Session,
    type_: str,
    head: dict[str, object],
    theirs: sa.ColumnElement[bool],
    now: datetime,
) -> None:
    """Queue ``type_``: ``head``, then the time and the counts of its deliveries."""
    data = head | {"at": rules.timestamp(now), "counts": _counts(session, theirs)}
    webhook_events.emit(session, type_, data)


def _unfinished(session: Session, theirs: sa.ColumnElement[bool]) -> bool:
    return _any(session, theirs, D.c.status.in_(_UNFINISHED))


def _any(session: Session, theirs: sa.ColumnElement[bool], which: sa.ColumnElement[bool]) -> bool:
    found = session.execute(sa.select(D.c.id).where(theirs, which).limit(1)).first()
    return found is not None


def _claim(session: Session, table: sa.Table, row_id: int, now: datetime) -> bool:
    done = session.execute(
        sa.update(table)
        .where(table.c.id == row_id, table.c.completed_at.is_(None))
        .values(completed_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _counts(session: Session, theirs: sa.ColumnElement[bool]) -> dict[str, int]:
    """Its deliveries by final state, every state named (zeros too)."""
    found = dict(
        session.execute(
            sa.select(D.c.status, sa.func.count()).where(theirs).group_by(D.c.status)
        ).all()
    )
    final = [s.value for s in DeliveryStatus if s.value not in _UNFINISHED]
    return {status: int(found.get(status, 0)) for status in final}
