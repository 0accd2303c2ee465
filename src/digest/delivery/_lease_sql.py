"""The SQL that takes, ends and returns leases on outbox rows (private to ``outbox.py``).

A worker leases the rows it is about to send; a lease ends with an outcome written, or the row
goes back to the queue untried (given back, or taken back from a worker that died).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest.db import in_batches
from digest.delivery.outcomes import newsletter_of
from digest.models import Announcement, Delivery, Subscriber, Subscription
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
AN = Announcement.__table__  # type: ignore[attr-defined]
ACTIVE = SubscriberStatus.ACTIVE.value
QUEUED = DeliveryStatus.QUEUED.value
SENDING = DeliveryStatus.SENDING.value
DEFERRED = DeliveryStatus.DEFERRED.value

# Given back or taken back, a row returns to "deferred" if it was tried before, else "queued".
_RETURN_STATUS = sa.case((D.c.attempts > 0, DEFERRED), else_=QUEUED)


def lease(
    session: Session,
    due: sa.ColumnElement[bool],
    limit: int,
    owner: str,
    until: datetime,
    now: datetime,
) -> Sequence[sa.Row[Any]]:
    """Lease up to ``limit`` rows matching ``due`` to ``owner`` until ``until``; the rows taken."""
    # FOR UPDATE SKIP LOCKED on PostgreSQL lets workers claim side by side without waiting on
    # each other; SQLite renders no locking clause and relies on BEGIN IMMEDIATE instead.
    # Ordered by next_attempt_at alone so the (status, next_attempt_at) index yields rows in
    # order: a whole edition shares one time, and a tie-breaker would force a full sort.
    candidates = (
        sa.select(D.c.id)
        .where(due)
        .order_by(D.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(D)
        .where(D.c.id.in_(candidates.scalar_subquery()))
        .values(status=SENDING, lease_owner=owner, lease_expires_at=until, updated_at=now)
        .returning(
            D.c.id,
            D.c.kind,
            D.c.subscriber_id,
            D.c.to_email,
            D.c.body_id,
            D.c.message_id,
            D.c.attempts,
            D.c.created_at,
            D.c.send_by,
            D.c.period_key,
            D.c.edition_id,
        )
    )
    return session.execute(stmt).all()


def close(session: Session, ids: list[int], status: str, reason: str, now: datetime) -> None:
    """End the leases on ``ids`` in ``status`` without sending them, saying why."""
    for chunk in in_batches(ids):
        session.execute(
            sa.update(D)
            .where(D.c.id.in_(chunk))
            .values(
                status=status,
                last_reply=reason,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )


def finish(session: Session, owner: str, params: list[dict[str, object]], **values: object) -> int:
    """End ``owner``'s leases on the rows ``params`` name (``b_id``) with one try counted and
    its reply (``b_reply``) kept, setting ``values`` too; one executemany, rows updated."""
    stmt = (
        sa.update(D)
        .where(D.c.id == sa.bindparam("b_id"), D.c.status == SENDING, D.c.lease_owner == owner)
        .values(
            attempts=D.c.attempts + 1,
            last_reply=sa.bindparam("b_reply"),
            lease_owner=None,
            lease_expires_at=None,
            **values,
        )
    )
    return int(session.connection().execute(stmt, params).rowcount or 0)


def release(session: Session, leased: sa.ColumnElement[bool], now: datetime) -> int:
    """Return the leased rows ``leased`` selects to the queue untried; how many."""
    result = session.execute(
        sa.update(D)
        .where(D.c.status == SENDING, leased)
        .values(status=_RETURN_STATUS, lease_owner=None, lease_expires_at=None, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class People:
    """The people leased rows go to: names, subscription statuses, who opted out of counting."""

    names: dict[int, str] = field(default_factory=dict)
    # (person, newsletter) -> status; (person, None) is active when any of theirs is
    statuses: dict[tuple[int, int | None], str] = field(default_factory=dict)
    opted_out: set[int] = field(default_factory=set)  # "don't count my clicks"


def people(session: Session, subscriber_ids: set[int]) -> People:
    """The names of the people leased rows go to, whether they opted out of click counting,
    and the status of each of their subscriptions (one query per table and chunk)."""
    found = People()
    names, statuses = found.names, found.statuses
    for chunk in in_batches(sorted(subscriber_ids)):
        for sid, name, opted_out in session.execute(
            sa.select(S.c.id, S.c.name, S.c.tracking_opt_out).where(S.c.id.in_(chunk))
        ):
            names[sid] = name or ""
            if opted_out:
                found.opted_out.add(sid)
        for sid, nid, status in session.execute(
            sa.select(U.c.subscriber_id, U.c.newsletter_id, U.c.status).where(
                U.c.subscriber_id.in_(chunk)
            )
        ):
            statuses[(sid, nid)] = status
            if status == ACTIVE:
                statuses[(sid, None)] = ACTIVE
    return found


def alerts_off(session: Session, rows: Sequence[sa.Row[Any]]) -> set[int]:
    """The ids of the leased alert rows whose reader has turned off that newsletter's alerts
    since the alert was queued (one query, and only when the batch holds alerts)."""
    alerts = [r for r in rows if r.kind == DeliveryKind.ALERT.value and r.subscriber_id]
    if not alerts:
        return set()
    off: set[tuple[int, int]] = set()
    for chunk in in_batches(sorted({r.subscriber_id for r in alerts})):
        found = session.execute(
            sa.select(U.c.subscriber_id, U.c.newsletter_id).where(
                U.c.subscriber_id.in_(chunk), U.c.alerts.is_not(True)
            )
        )
        off.update((sid, nid) for sid, nid in found)
    return {r.id for r in alerts if (r.subscriber_id, newsletter_of(r.period_key)) in off}


def announcements_cancelled(session: Session, rows: Sequence[sa.Row[Any]]) -> set[int]:
    """The ids of the leased announcement rows whose announcement was cancelled since: a row
    a worker held when it was cancelled, and gave back, must not go out later."""
    ids: dict[int, int] = {}
    for r in rows:
        if r.kind == DeliveryKind.ANNOUNCEMENT.value and r.period_key:
            _, _, tail = r.period_key.partition("/a:")
            if tail.isdigit():
                ids[r.id] = int(tail)
    if not ids:
        return set()
    cancelled = set(
        session.execute(
            sa.select(AN.c.id).where(
                AN.c.id.in_(sorted(set(ids.values()))), AN.c.status == "cancelled"
            )
        ).scalars()
    )
    return {row_id for row_id, aid in ids.items() if aid in cancelled}
