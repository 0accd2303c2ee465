"""The outbox: claiming mail under a lease and recording what happened to it.

One row of ``deliveries`` is one message to one address. Rows move queued -> sending (leased
by one worker) -> sent / deferred / bounced / failed, or to cancelled / skipped without being
sent. Every function takes an open session (``Database.transaction()``), uses Core statements
on the tables (no ORM objects on the hot path) and works the same on SQLite and PostgreSQL.

Exactly-once as far as SMTP allows: a row becomes ``sent`` only after the server accepted the
message and only while the lease is still ours; a crash between the two leaves the row leased,
and once the lease is taken back the message goes again with the same Message-ID (the
"in-flight rule": only messages then in flight can repeat).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest import subscribers
from digest.clock import utcnow
from digest.db import in_batches
from digest.delivery.bounces import escalate_soft_bounces
from digest.delivery.enqueue import (
    enqueue_digests,
    enqueue_transactional,
    queue_transactional,
    record_skips,
)
from digest.delivery.leases import (
    extend_leases,
    give_back,
    lease_owners,
    pending_count,
    requeue_expired_leases,
    requeue_owners,
)
from digest.delivery.outcomes import BodyContent, Claimed, Outcome
from digest.models import MAX_REPLY, Body, Delivery, Subscriber
from digest.states import DeliveryKind, DeliveryStatus, SubscriberStatus

__all__ = [
    "BodyContent",
    "Claimed",
    "Outcome",
    "bodies",
    "claim",
    "enqueue_digests",
    "enqueue_transactional",
    "extend_leases",
    "give_back",
    "lease_owners",
    "pending_count",
    "queue_transactional",
    "record",
    "record_skips",
    "requeue_expired_leases",
    "requeue_owners",
]

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
B = Body.__table__  # type: ignore[attr-defined]

QUEUED = DeliveryStatus.QUEUED.value
SENDING = DeliveryStatus.SENDING.value
DEFERRED = DeliveryStatus.DEFERRED.value


# -- claiming ------------------------------------------------------------------------------------


def claim(
    session: Session, *, owner: str, limit: int, lease: timedelta, now: datetime | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``owner`` and return those to send.

    Due means queued or deferred with ``next_attempt_at <= now``, or ``sending`` under an
    expired lease (a dead worker's). Of the rows taken, digests whose subscriber is no longer
    active are cancelled and digests past their send-by time skipped; they are not returned.
    """
    now = now or utcnow()
    rows: list[sa.Row[Any]] = []
    # Three index range scans instead of one OR: with an OR the database gathers and sorts
    # every due row to pick the first few, which at a million queued rows is a million-row
    # sort per batch. Taken back first: dead workers' leases, then retries, then new mail.
    for due in (
        sa.and_(D.c.status == SENDING, D.c.lease_expires_at < now),
        sa.and_(D.c.status == DEFERRED, D.c.next_attempt_at <= now),
        sa.and_(D.c.status == QUEUED, D.c.next_attempt_at <= now),
    ):
        if len(rows) >= limit:
            break
        rows.extend(_lease(session, due, limit - len(rows), owner, now + lease, now))
    if not rows:
        return []
    sub_ids = {r.subscriber_id for r in rows if r.subscriber_id is not None}
    people: dict[int, tuple[str, str]] = {}
    for chunk in in_batches(sorted(sub_ids)):
        for sid, name, status in session.execute(
            sa.select(S.c.id, S.c.name, S.c.status).where(S.c.id.in_(chunk))
        ):
            people[sid] = (name or "", status)
    cancelled: list[int] = []
    late: list[int] = []
    out: list[Claimed] = []
    for r in rows:
        name, status = people.get(r.subscriber_id, ("", None)) if r.subscriber_id else ("", None)
        if r.kind == DeliveryKind.DIGEST.value:
            if status != SubscriberStatus.ACTIVE.value:
                cancelled.append(r.id)
                continue
            if r.send_by is not None and r.send_by < now:
                late.append(r.id)
                continue
        out.append(
            Claimed(
                r.id,
                r.kind,
                r.subscriber_id,
                r.to_email,
                name,
                r.body_id,
                r.message_id,
                r.attempts,
                r.created_at,
            )
        )
    _close(session, cancelled, DeliveryStatus.CANCELLED.value, "subscriber no longer active", now)
    _close(session, late, DeliveryStatus.SKIPPED.value, "past its send-by time; not sent late", now)
    out.sort(key=lambda c: c.id)
    return out


def _lease(
    session: Session,
    due: sa.ColumnElement[bool],
    limit: int,
    owner: str,
    until: datetime,
    now: datetime,
) -> Sequence[sa.Row[Any]]:
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
        )
    )
    return session.execute(stmt).all()


def _close(session: Session, ids: list[int], status: str, reason: str, now: datetime) -> None:
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


def bodies(session: Session, ids: Iterable[int]) -> dict[int, BodyContent]:
    """The bodies with these ids (a worker caches them; there are few per edition)."""
    wanted = sorted(set(ids))
    found: dict[int, BodyContent] = {}
    for chunk in in_batches(wanted):
        for bid, subject, text, html in session.execute(
            sa.select(B.c.id, B.c.subject, B.c.text, B.c.html).where(B.c.id.in_(chunk))
        ):
            found[bid] = BodyContent(subject, text, html)
    return found


# -- recording -----------------------------------------------------------------------------------


def record(
    session: Session,
    *,
    owner: str,
    outcomes: Sequence[Outcome],
    now: datetime | None = None,
    soft_bounce_limit: int = 0,
) -> int:
    """Write the outcomes of a batch, each only if the row is still leased to ``owner``.

    One executemany per kind of outcome. A hard bounce also marks the subscriber bounced
    and suppresses the address, and so does a soft one that makes ``soft_bounce_limit``
    bounced digests in a row. Returns how many rows were updated.
    """
    now = now or utcnow()
    mine = sa.and_(D.c.id == sa.bindparam("b_id"), D.c.status == SENDING, D.c.lease_owner == owner)
    updated = 0
    sent = [o for o in outcomes if o.status == DeliveryStatus.SENT.value]
    if sent:
        stmt = (
            sa.update(D)
            .where(mine)
            .values(
                status=DeliveryStatus.SENT.value,
                attempts=D.c.attempts + 1,
                last_reply=sa.bindparam("b_reply"),
                sent_at=now,
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        updated += _many(
            session, stmt, [{"b_id": o.delivery_id, "b_reply": o.reply[:MAX_REPLY]} for o in sent]
        )
    deferred = [o for o in outcomes if o.status == DEFERRED]
    if deferred:
        stmt = (
            sa.update(D)
            .where(mine)
            .values(
                status=DEFERRED,
                attempts=D.c.attempts + 1,
                last_reply=sa.bindparam("b_reply"),
                updated_at=now,
                next_attempt_at=sa.bindparam("b_next", type_=D.c.next_attempt_at.type),
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        updated += _many(
            session,
            stmt,
            [
                {
                    "b_id": o.delivery_id,
                    "b_reply": o.reply[:MAX_REPLY],
                    "b_next": o.next_attempt_at or now,
                }
                for o in deferred
            ],
        )
    final = [o for o in outcomes if o.status not in (DeliveryStatus.SENT.value, DEFERRED)]
    if final:
        stmt = (
            sa.update(D)
            .where(mine)
            .values(
                status=sa.bindparam("b_status"),
                attempts=D.c.attempts + 1,
                last_reply=sa.bindparam("b_reply"),
                updated_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        updated += _many(
            session,
            stmt,
            [
                {"b_id": o.delivery_id, "b_status": o.status, "b_reply": o.reply[:MAX_REPLY]}
                for o in final
            ],
        )
    for o in final:
        if o.hard_bounce:
            _hard_bounce(session, o)
    soft = [
        o.subscriber_id
        for o in final
        if o.status == DeliveryStatus.BOUNCED.value and not o.hard_bounce
    ]
    escalate_soft_bounces(session, [sid for sid in soft if sid is not None], soft_bounce_limit)
    return updated


def _many(session: Session, stmt: sa.Update, params: list[dict[str, object]]) -> int:
    result = session.connection().execute(stmt, params)
    return int(result.rowcount or 0)


def _hard_bounce(session: Session, outcome: Outcome) -> None:
    # The address does not exist: mailing it again hurts the sender's reputation.
    if outcome.to_email:
        subscribers.record_bounce(session, outcome.to_email, subscriber_id=outcome.subscriber_id)
