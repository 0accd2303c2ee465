"""The webhook queue in the store: claiming due events under a lease, recording each POST's
outcome, counting the queue, and clearing out what was delivered long ago.

A row stays ``pending`` while it is tried; a claim leases it (``lease_expires_at``) so no other
sender takes it meanwhile, and the outcome is written only while that lease is still the one
taken. A sender that dies mid-POST leaves the lease to run out, and the event goes again, with
the same id and body: only the events in flight can repeat, and receivers de-duplicate by id.

Fair by webhook: a claim takes each due webhook's oldest event before any webhook's second, and
at most ``PER_WEBHOOK`` of one, so a receiver with a backlog (an import) or one that never
answers cannot hold up the others. When a webhook times out, cannot be reached or answers 5xx,
its other due events wait for the same next try rather than each failing in turn (a circuit
breaker); they keep their ids and still die 24 hours after they were made.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest import webhook_rules as rules
from digest.models_engagement import Webhook, WebhookDelivery

W = Webhook.__table__  # type: ignore[attr-defined]
WD = WebhookDelivery.__table__  # type: ignore[attr-defined]
MAX_ERROR = 1000  # the last_error column
#: Delivered events are kept this long (for ``digest status`` and a look at what went), dead
#: ones longer, for the operator to see.
KEEP_DELIVERED = timedelta(days=7)
KEEP_DEAD = timedelta(days=30)
PER_WEBHOOK = 5  # events of one webhook in one claim


@dataclass(frozen=True)
class Due:
    """One event for one webhook, leased to this sender until ``lease``."""

    id: int
    webhook_id: int
    event_id: str
    type: str
    body: str
    created_at: datetime
    attempts: int
    url: str
    secret: str
    lease: datetime


@dataclass(frozen=True)
class Tried:
    """What one POST came to: delivered, or the one-line reason it was not."""

    id: int
    lease: datetime
    error: str | None = None
    # The receiver is down, silent or broken (no connection, no answer, 5xx): its other
    # events are not tried before this one's next try.
    unreachable: bool = False


def claim(
    session: Session, now: datetime, limit: int, lease: timedelta, per_webhook: int = PER_WEBHOOK
) -> list[Due]:
    """Lease up to ``limit`` events due at ``now`` until ``now + lease``: each webhook's oldest
    first, then their second oldest..., at most ``per_webhook`` of one webhook."""
    until = now + lease
    free = sa.or_(WD.c.lease_expires_at.is_(None), WD.c.lease_expires_at < now)
    due = sa.and_(WD.c.status == rules.QUEUED, WD.c.next_attempt_at <= now, free)
    nth = sa.func.row_number().over(
        partition_by=WD.c.webhook_id, order_by=(WD.c.next_attempt_at, WD.c.id)
    )
    ranked = sa.select(WD.c.id, nth.label("nth")).where(due).subquery()
    # FOR UPDATE SKIP LOCKED: two senders on PostgreSQL take different rows without waiting on
    # each other; SQLite has no such clause and holds its write lock from BEGIN IMMEDIATE. The
    # window is computed in a subquery (PostgreSQL locks no rows of one), the lock taken on
    # the rows themselves, their due test read again.
    candidates = (
        sa.select(WD.c.id)
        .join(ranked, ranked.c.id == WD.c.id)
        .where(ranked.c.nth <= per_webhook, due)
        .order_by(ranked.c.nth, WD.c.next_attempt_at, WD.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WD)
    )
    ids = list(session.execute(candidates).scalars())
    if not ids:
        return []
    session.execute(sa.update(WD).where(WD.c.id.in_(ids)).values(lease_expires_at=until))
    rows = session.execute(
        sa.select(WD, W.c.url, W.c.secret)
        .join(W, W.c.id == WD.c.webhook_id)
        .where(WD.c.id.in_(ids))
        .order_by(WD.c.next_attempt_at, WD.c.id)
    ).mappings()
    return [
        Due(
            id=r["id"],
            webhook_id=r["webhook_id"],
            event_id=r["event_id"],
            type=r["type"],
            body=r["body"],
            created_at=r["created_at"],
            attempts=r["attempts"],
            url=r["url"],
            secret=r["secret"],
            lease=until,
        )
        for r in rows
    ]


def record(
    session: Session,
    tried: Sequence[Tried],
    claimed: dict[int, Due],
    now: datetime,
    rng: random.Random | None = None,
) -> dict[str, int]:
    """Write each POST's outcome, while the lease taken is still the row's: delivered, or
    tried again later by the backoff schedule, or dead after 24 hours; an unreachable
    webhook's other due events wait for that next try too. Counts by outcome."""
    rng = rng or random.Random()
    counts = {rules.DELIVERED: 0, "retry": 0, rules.DEAD: 0}
    for t in tried:
        ours = sa.and_(
            WD.c.id == t.id, WD.c.status == rules.QUEUED, WD.c.lease_expires_at == t.lease
        )
        values: dict[str, object] = {"attempts": WD.c.attempts + 1, "lease_expires_at": None}
        later: datetime | None = None
        if t.error is None:
            values.update(status=rules.DELIVERED, delivered_at=now, last_error=None)
            outcome = rules.DELIVERED
        else:
            due = claimed[t.id]
            later = rules.after_failure(due.attempts + 1, due.created_at, now, rng.random())
            values["last_error"] = t.error[:MAX_ERROR]
            if later is None:
                values["status"] = rules.DEAD
                outcome = rules.DEAD
            else:
                values["next_attempt_at"] = later
                outcome = "retry"
        done = session.execute(sa.update(WD).where(ours).values(**values))
        if done.rowcount:  # type: ignore[attr-defined]
            counts[outcome] += 1
            if t.unreachable and later is not None:
                _hold_back(session, claimed[t.id].webhook_id, now, later)
    return counts


def _hold_back(session: Session, webhook_id: int, now: datetime, until: datetime) -> None:
    """The circuit breaker: the webhook's events not in flight wait until ``until``."""
    free = sa.or_(WD.c.lease_expires_at.is_(None), WD.c.lease_expires_at < now)
    session.execute(
        sa.update(WD)
        .where(
            WD.c.webhook_id == webhook_id,
            WD.c.status == rules.QUEUED,
            WD.c.next_attempt_at < until,
            free,
        )
        .values(next_attempt_at=until)
    )


def release(session: Session, leases: Sequence[Due]) -> None:
    """Give leased events back untried (shutdown): due again at once, nothing counted."""
    for due in leases:
        session.execute(
            sa.update(WD)
            .where(WD.c.id == due.id, WD.c.lease_expires_at == due.lease)
            .values(lease_expires_at=None)
        )


def counts(session: Session) -> dict[str, int]:
    """The queue by state: pending, delivered, dead (zeros too)."""
    query = sa.select(WD.c.status, sa.func.count()).group_by(WD.c.status)
    found = {status: n for status, n in session.execute(query)}
    return {s: int(found.get(s, 0)) for s in (rules.QUEUED, rules.DELIVERED, rules.DEAD)}


def counts_by_webhook(session: Session) -> dict[int, dict[str, int]]:
    """Each webhook's queue by state."""
    out: dict[int, dict[str, int]] = {}
    query = sa.select(WD.c.webhook_id, WD.c.status, sa.func.count()).group_by(
        WD.c.webhook_id, WD.c.status
    )
    for webhook_id, status, n in session.execute(query):
        out.setdefault(webhook_id, {})[status] = int(n)
    return out


def prune(session: Session, now: datetime) -> int:
    """Delete the events delivered more than a week ago and dead for more than a month."""
    old = sa.or_(
        sa.and_(WD.c.status == rules.DELIVERED, WD.c.delivered_at < now - KEEP_DELIVERED),
        sa.and_(WD.c.status == rules.DEAD, WD.c.next_attempt_at < now - KEEP_DEAD),
    )
    return int(session.execute(sa.delete(WD).where(old)).rowcount or 0)  # type: ignore[attr-defined]
