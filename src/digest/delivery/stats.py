"""How the outbox stands: counts by state, the latest editions, the last errors.

Plain data for ``digest status``, the web ``/metrics`` and the admin API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest.models import Delivery, Edition
from digest.states import DeliveryStatus

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
PROBLEMS = (
    DeliveryStatus.FAILED.value,
    DeliveryStatus.BOUNCED.value,
    DeliveryStatus.DEFERRED.value,
)


@dataclass(frozen=True)
class EditionStats:
    """One edition and its deliveries by state."""

    id: int
    key: str
    created_at: datetime
    recipients: int
    counts: dict[str, int]


@dataclass(frozen=True)
class ErrorRow:
    """One delivery that did not go (yet), with the server's last reply."""

    delivery_id: int
    to_email: str
    status: str
    last_reply: str
    updated_at: datetime


@dataclass(frozen=True)
class OutboxStatus:
    """The whole picture."""

    counts: dict[str, int]
    editions: list[EditionStats] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


def _zeroes() -> dict[str, int]:
    return {s.value: 0 for s in DeliveryStatus}


def outbox_counts(session: Session) -> dict[str, int]:
    """How many deliveries are in each state (every state present)."""
    counts = _zeroes()
    for status, n in session.execute(sa.select(D.c.status, sa.func.count()).group_by(D.c.status)):
        counts[status] = int(n)
    return counts


def latest_editions(session: Session, limit: int = 5) -> list[EditionStats]:
    """The newest editions, each with its deliveries counted by state."""
    editions = session.execute(
        sa.select(E.c.id, E.c.key, E.c.created_at, E.c.recipients)
        .order_by(E.c.created_at.desc(), E.c.id.desc())
        .limit(limit)
    ).all()
    if not editions:
        return []
    counts: dict[int, dict[str, int]] = {e.id: _zeroes() for e in editions}
    rows = session.execute(
        sa.select(D.c.edition_id, D.c.status, sa.func.count())
        .where(D.c.edition_id.in_(list(counts)))
        .group_by(D.c.edition_id, D.c.status)
    )
    for edition_id, status, n in rows:
        counts[edition_id][status] = int(n)
    return [
        EditionStats(
            e.id, e.key, e.created_at, e.recipients or sum(counts[e.id].values()), counts[e.id]
        )
        for e in editions
    ]


def last_errors(session: Session, limit: int = 10) -> list[ErrorRow]:
    """The latest failed, bounced or deferred deliveries with their last reply."""
    rows = session.execute(
        sa.select(D.c.id, D.c.to_email, D.c.status, D.c.last_reply, D.c.updated_at)
        .where(D.c.status.in_(PROBLEMS))
        .order_by(D.c.updated_at.desc(), D.c.id.desc())
        .limit(limit)
    )
    return [ErrorRow(r.id, r.to_email, r.status, r.last_reply or "", r.updated_at) for r in rows]


def outbox_status(session: Session, *, editions: int = 5, errors: int = 10) -> OutboxStatus:
    """Counts, the latest editions and the last errors in one read."""
    return OutboxStatus(
        outbox_counts(session), latest_editions(session, editions), last_errors(session, errors)
    )
