"""An announcement's mail in the outbox: queued set-wise, counted, and cancelled by its once-key.

Every delivery of announcement ID of newsletter N carries the once-key ``"N/a:ID"``, so the
store's unique (subscriber, once-key) holds each reader to one copy whatever runs twice, and
the key never meets a digest's ``"N/daily:…"``: an announcement takes no reader's digest.
All of an announcement's deliveries share its one body, so they are found through the
body's index, not by reading the whole outbox.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from digest.clock import utcnow
from digest.delivery import _enqueue_sql
from digest.models import Delivery
from digest.states import DeliveryKind, DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
#: Not yet gone: what cancelling an announcement takes back.
WAITING = (DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value)


def once_key(newsletter_id: int, announcement_id: int) -> str:
    """The once-key of an announcement's deliveries: ``"1/a:7"``."""
    return f"{newsletter_id}/a:{announcement_id}"


def enqueue_announcement(
    session: Session,
    *,
    announcement_id: int,
    newsletter_id: int,
    body_id: int,
    subscriber_filter: sa.ColumnElement[bool],
    domain: str,
) -> int:
    """Queue the announcement's body for every reader the filter selects (a WHERE clause over
    subscribers joined with their subscriptions); how many rows were added.

    One ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, like an edition: idempotent, safe
    from two processes at once. Message-IDs are ``<a7.SUBSCRIBER.hex@domain>``.
    """
    return _enqueue_sql.insert_select(
        session,
        status=DeliveryStatus.QUEUED.value,
        kind=DeliveryKind.ANNOUNCEMENT.value,
        edition_id=None,  # type: ignore[arg-type]  # no edition: the once-key is its key
        body_id=body_id,
        period_key=once_key(newsletter_id, announcement_id),
        send_by=None,
        subscriber_filter=subscriber_filter,
        message_id_prefix=f"a{announcement_id}",
        domain=domain,
        reply=None,
    )


def _theirs(key: str, body_id: int) -> sa.ColumnElement[bool]:
    return sa.and_(D.c.body_id == body_id, D.c.period_key == key)


def cancel_waiting(session: Session, key: str, body_id: int) -> int:
    """Cancel the announcement's deliveries not yet gone (queued or deferred); how many."""
    result = session.execute(
        sa.update(D)
        .where(_theirs(key, body_id), D.c.status.in_(WAITING))
        .values(status=DeliveryStatus.CANCELLED.value, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def counts(session: Session, key: str, body_id: int | None) -> dict[str, int]:
    """The announcement's deliveries by status (only the statuses it has)."""
    if body_id is None:
        return {}
    rows = session.execute(
        sa.select(D.c.status, sa.func.count()).where(_theirs(key, body_id)).group_by(D.c.status)
    )
    return {status: int(n) for status, n in rows}
