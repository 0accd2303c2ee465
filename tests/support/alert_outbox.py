"""Mail waiting in the outbox for the opt-in tests: an alert (``"N/alert:ID"``) or a digest, as
the alert lane or an edition would leave it, and reading back what became of it."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from digest.clock import utcnow
from digest.db import Database
from digest.models import Body, Delivery


def queue(db: Database, person_id: int, email: str, key: str, status: str = "queued") -> int:
    """A delivery of once-key ``key`` for the person, in ``status``; its id."""
    with db.transaction() as session:
        body = Body(subject="News", text="x", html="<p>x</p>")
        session.add(body)
        session.flush()
        row = Delivery(
            kind="alert" if "/alert:" in key else "digest",
            subscriber_id=person_id,
            body_id=body.id,
            to_email=email,
            period_key=key,
            status=status,
            message_id=f"<{key.replace('/', '.').replace(':', '.')}@example.com>",
            next_attempt_at=utcnow() + timedelta(minutes=5),
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def statuses(db: Database, ids: list[int]) -> list[str]:
    """The status of each delivery, in the order of ``ids``."""
    with db.transaction() as session:
        rows = session.exec(select(Delivery).where(col(Delivery.id).in_(ids))).all()
        found = {r.id: r.status for r in rows}
    return [found[i] for i in ids]
