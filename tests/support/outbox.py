"""Filling the outbox for tests: subscribers in bulk, an edition with its body, digests queued."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.models import Body, Edition, Subscriber, Subscription


def insert_readers(
    session: Session,
    people: list[dict[str, Any]],
    *,
    newsletter_id: int = 1,
    status: str = "active",
    cadence: str = "daily",
) -> list[int]:
    """Insert people (dicts of ``subscribers`` columns, ``email`` at least) and a subscription
    of each to the newsletter, in bulk; their ids in order."""
    now = utcnow()
    rows = [
        {"name": "", "timezone": "UTC", "send_hour": 7, "created_at": now, "updated_at": now} | p
        for p in people
    ]
    S = Subscriber.__table__  # type: ignore[attr-defined]
    session.execute(sa.insert(S), rows)
    emails = [r["email"] for r in rows]
    found = dict(session.execute(sa.select(S.c.email, S.c.id).where(S.c.email.in_(emails))).all())
    ids = [int(found[e]) for e in emails]
    session.execute(
        sa.insert(Subscription.__table__),  # type: ignore[attr-defined]
        [
            {
                "subscriber_id": i,
                "newsletter_id": newsletter_id,
                "status": status,
                "cadence": cadence,
                "topics": [],
                "created_at": now,
                "updated_at": now,
            }
            for i in ids
        ],
    )
    return ids


def add_subscribers(db: Database, n: int, *, status: str = "active", start: int = 0) -> None:
    """Subscribers p{start}..p{start+n-1}@example.org, daily at 07:00 UTC, in one insert."""
    people = [{"email": f"p{i}@example.org", "name": f"P {i}"} for i in range(start, start + n)]
    with db.transaction() as session:
        for chunk in range(0, len(people), 5000):
            insert_readers(session, people[chunk : chunk + 5000], status=status)


def make_edition(db: Database, key: str = "daily:2026-11-29T07Z") -> tuple[int, int]:
    """A daily edition with one body: (edition id, body id)."""
    with db.transaction() as session:
        edition = Edition(key=key, cadence="daily")
        session.add(edition)
        session.flush()
        body = Body(edition_id=edition.id, subject="News", text="Hi %%NAME%%", html="<p>Hi</p>")
        session.add(body)
        session.flush()
        assert edition.id is not None and body.id is not None
        return edition.id, body.id


def enqueue(
    db: Database,
    edition_id: int,
    body_id: int,
    *,
    period: str = "1/daily:2026-11-29",
    send_by: datetime | None = None,
    prefix: str = "e1",
) -> int:
    """Queue the edition's digest for every active subscriber; how many rows were queued."""
    with db.transaction() as session:
        return outbox.enqueue_digests(
            session,
            edition_id=edition_id,
            body_id=body_id,
            period_key=period,
            send_by=send_by,
            subscriber_filter=sa.and_(
                Subscription.newsletter_id == 1, Subscription.status == "active"
            ),
            message_id_prefix=prefix,
            domain="example.org",
        )


def status_of(session: Session, subscriber_id: int | None, newsletter_id: int = 1) -> str | None:
    """The status of the person's subscription to the newsletter; None when they have none."""
    U = Subscription.__table__  # type: ignore[attr-defined]
    return session.execute(
        sa.select(U.c.status).where(
            U.c.subscriber_id == subscriber_id, U.c.newsletter_id == newsletter_id
        )
    ).scalar_one_or_none()
