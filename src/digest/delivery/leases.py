"""Leases on outbox rows: given back, extended, or taken back from workers that died.

A worker leases the rows it is about to send (``outbox.claim``); these functions end or move
those leases without sending anything. ``outbox`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest.clock import utcnow
from digest.db import in_batches
from digest.models import Delivery
from digest.states import DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
QUEUED = DeliveryStatus.QUEUED.value
SENDING = DeliveryStatus.SENDING.value
DEFERRED = DeliveryStatus.DEFERRED.value

# Given back or taken back, a row returns to "deferred" if it was tried before, else "queued".
_RETURN_STATUS = sa.case((D.c.attempts > 0, DEFERRED), else_=QUEUED)


def give_back(session: Session, *, owner: str, ids: Sequence[int]) -> int:
    """Return leased rows that were not tried (shutdown, open breaker) to the queue."""
    n = 0
    for chunk in in_batches(list(ids)):
        result = session.execute(
            sa.update(D)
            .where(D.c.id.in_(chunk), D.c.status == SENDING, D.c.lease_owner == owner)
            .values(
                status=_RETURN_STATUS, lease_owner=None, lease_expires_at=None, updated_at=utcnow()
            )
        )
        n += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return n


def extend_leases(session: Session, *, owner: str, until: datetime) -> int:
    """Push back the expiry of every lease ``owner`` holds (a long batch on a slow server)."""
    result = session.execute(
        sa.update(D)
        .where(D.c.status == SENDING, D.c.lease_owner == owner)
        .values(lease_expires_at=until)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def requeue_expired_leases(session: Session, now: datetime | None = None) -> int:
    """Take back every lease that has run out (its worker died); returns how many rows."""
    now = now or utcnow()
    result = session.execute(
        sa.update(D)
        .where(D.c.status == SENDING, D.c.lease_expires_at < now)
        .values(status=_RETURN_STATUS, lease_owner=None, lease_expires_at=None, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def requeue_owners(session: Session, owners: Sequence[str]) -> int:
    """Take back the leases of these owners at once (workers known to be dead)."""
    if not owners:
        return 0
    result = session.execute(
        sa.update(D)
        .where(D.c.status == SENDING, D.c.lease_owner.in_(list(owners)))
        .values(status=_RETURN_STATUS, lease_owner=None, lease_expires_at=None, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def lease_owners(session: Session, prefix: str) -> list[str]:
    """Owners of current leases whose name starts with ``prefix`` (e.g. this host's)."""
    rows = session.execute(
        sa.select(D.c.lease_owner)
        .where(D.c.status == SENDING, D.c.lease_owner.startswith(prefix, autoescape=True))
        .distinct()
    )
    return [r[0] for r in rows if r[0]]


def pending_count(session: Session, now: datetime | None = None) -> int:
    """How many rows are due or leased: what a drain still waits for."""
    now = now or utcnow()
    return int(
        session.execute(
            sa.select(sa.func.count())
            .select_from(D)
            .where(
                sa.or_(
                    sa.and_(D.c.status.in_([QUEUED, DEFERRED]), D.c.next_attempt_at <= now),
                    D.c.status == SENDING,
                )
            )
        ).scalar_one()
    )
