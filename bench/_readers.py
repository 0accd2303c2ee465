"""Readers for the bench scripts, written in bulk: people (``subscribers``) and their
subscriptions to newsletters (``subscriptions``), as the schema of migration 0008 has them.

Rows go in with Core statements, never through the ORM: a bench measures digest's own work,
not how it was filled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest import newsletters
from digest.clock import utcnow
from digest.models import Subscriber, Subscription

S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]
CHUNK = 5000


def add_people(session: Session, people: Sequence[dict[str, Any]]) -> list[int]:
    """Insert people (dicts of ``subscribers`` columns, ``email`` at least); their ids in order."""
    now = utcnow()
    defaults = {"name": "", "timezone": "UTC", "send_hour": 7, "created_at": now, "updated_at": now}
    insert = sa.insert(S).returning(S.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for start in range(0, len(people), CHUNK):
        rows = [defaults | p for p in people[start : start + CHUNK]]
        ids.extend(int(i) for i in session.execute(insert, rows).scalars())
    return ids


def subscribe(
    session: Session,
    ids: Sequence[int],
    newsletter_id: int = 1,
    *,
    status: str = "active",
    cadence: str = "daily",
    topics: Callable[[int], list[str]] | None = None,
    at: datetime | None = None,
) -> None:
    """Subscribe each of ``ids`` to the newsletter; ``topics(i)`` gives the i-th one's topics."""
    at = at or utcnow()
    for start in range(0, len(ids), CHUNK):
        rows = [
            {
                "subscriber_id": sid,
                "newsletter_id": newsletter_id,
                "status": status,
                "cadence": cadence,
                "topics": topics(start + k) if topics else [],
                "created_at": at,
                "updated_at": at,
                "confirmed_at": at,
                "active_since": at,
            }
            for k, sid in enumerate(ids[start : start + CHUNK])
        ]
        session.execute(sa.insert(U), rows)


def subscribe_everyone(
    session: Session,
    newsletter_id: int = 1,
    *,
    cadence: str = "daily",
    where: sa.ColumnElement[bool] | None = None,
) -> int:
    """Subscribe every person in the store (or those ``where`` picks) to the newsletter,
    active, in one ``INSERT ... SELECT``; how many rows were added."""
    columns = ["subscriber_id", "newsletter_id", "status", "cadence", "topics"]
    columns += ["created_at", "updated_at", "confirmed_at", "active_since"]
    select = sa.select(
        S.c.id,
        sa.literal(newsletter_id),
        sa.literal("active"),
        sa.literal(cadence),
        sa.literal([], type_=U.c.topics.type),
        S.c.created_at,
        S.c.created_at,
        S.c.created_at,
        S.c.created_at,
    )
    if where is not None:
        select = select.where(where)
    return int(session.execute(sa.insert(U).from_select(columns, select)).rowcount or 0)


def add_newsletter(session: Session, slug: str, name: str) -> int:
    """A further newsletter drawing from every post; its id."""
    made = newsletters.add(session, slug, name=name)
    session.flush()
    assert made.id is not None
    return made.id
