"""Filling the outbox for tests: subscribers in bulk, an edition with its body, digests queued."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.models import Body, Edition, Subscriber


def add_subscribers(db: Database, n: int, *, status: str = "active", start: int = 0) -> None:
    """Subscribers p{start}..p{start+n-1}@example.org, daily at 07:00 UTC, in one insert."""
    now = utcnow()
    rows = [
        {
            "email": f"p{i}@example.org",
            "name": f"P {i}",
            "status": status,
            "cadence": "daily",
            "topics": [],
            "timezone": "UTC",
            "send_hour": 7,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(start, start + n)
    ]
    with db.transaction() as session:
        session.execute(sa.insert(Subscriber.__table__), rows)


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
    period: str = "daily:2026-11-29",
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
            subscriber_filter=Subscriber.status == "active",
            message_id_prefix=prefix,
            domain="example.org",
        )
