"""Readers who opted in to alerts, and posts to alert, for the alert tests.

Opting in is set straight in the store (``subscriptions.alerts``): the subscribe page, the
preference centre and the import that let readers do it are tested on their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from digest.clock import utcnow
from digest.db import Database
from digest.models import Delivery, Newsletter, Post, Subscription
from tests.support.outbox import insert_readers

D = Delivery.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
N = Newsletter.__table__  # type: ignore[attr-defined]


def readers(
    db: Database,
    emails: list[str],
    *,
    timezone: str = "UTC",
    alerts: bool = True,
    status: str = "active",
    newsletter_id: int = 1,
) -> list[int]:
    """Readers of the newsletter in ``timezone``, opted in to its alerts (or not); their ids."""
    people: list[dict[str, Any]] = [{"email": e, "timezone": timezone} for e in emails]
    with db.transaction() as session:
        ids = insert_readers(session, people, newsletter_id=newsletter_id, status=status)
        if alerts:
            session.execute(
                sa.update(U)
                .where(U.c.subscriber_id.in_(ids), U.c.newsletter_id == newsletter_id)
                .values(alerts=True)
            )
    return ids


def newsletter_settings(db: Database, newsletter_id: int = 1, **values: Any) -> None:
    """Set the newsletter's alert fields (quiet_hours, alert_budget, alert_expiry_hours...)."""
    with db.transaction() as session:
        session.execute(sa.update(N).where(N.c.id == newsletter_id).values(**values))


def post(
    db: Database,
    title: str = "Bridge closed after storm",
    *,
    categories: list[str] | None = None,
    first_seen_at: datetime | None = None,
    image_url: str | None = None,
) -> int:
    """A post; its id."""
    seen = first_seen_at or utcnow()
    slug = title.lower().replace(" ", "-")
    with db.transaction() as session:
        row = Post(
            guid=f"https://news.example.com/{slug}",
            title=title,
            link=f"https://news.example.com/{slug}",
            summary=f"What we know so far about {title.lower()}.",
            categories=categories or [],
            image_url=image_url,
            published_at=seen,
            first_seen_at=seen,
            updated_at=seen,
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def alert_rows(db: Database) -> list[Any]:
    """Every alert delivery, by subscriber then id."""
    with db.transaction() as session:
        return list(
            session.execute(
                sa.select(D).where(D.c.kind == "alert").order_by(D.c.subscriber_id, D.c.id)
            ).all()
        )
