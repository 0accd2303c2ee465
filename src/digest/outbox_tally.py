"""The outbox by state as last counted: the scheduler counts it once a minute into
``outbox_tally``; the desk's Today page reads those few rows instead of counting every
delivery on each view (a day of digests at a million readers is a million rows).

A tally older than ``FRESH`` (no scheduler running: ``digest serve`` runs one) is not shown
as current: the page counts then, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.models_counts import OutboxTally
from digest.states import DeliveryStatus
from digest.stats import outbox_counts

T = OutboxTally.__table__  # type: ignore[attr-defined]
#: How old a tally may be and still be shown as the outbox now.
FRESH = timedelta(minutes=5)


@dataclass(frozen=True)
class Tally:
    """The outbox by state, and when it was counted."""

    counts: dict[str, int]
    counted_at: datetime
    live: bool  # counted for this view (no fresh tally)


def refresh(session: Session, now: datetime) -> dict[str, int]:
    """Count the outbox by state now and keep it (one row per state)."""
    counts = outbox_counts(session)
    session.execute(sa.delete(T))
    session.execute(
        sa.insert(T), [{"status": s, "n": n, "counted_at": now} for s, n in counts.items()]
    )
    return counts


def current(session: Session, now: datetime) -> Tally:
    """The outbox by state: the kept tally if fresh, else counted now."""
    rows = session.execute(sa.select(T.c.status, T.c.n, T.c.counted_at)).all()
    if rows:
        counted_at = min(r.counted_at for r in rows)
        if now - counted_at <= FRESH:
            counts = {s.value: 0 for s in DeliveryStatus}
            counts.update({r.status: int(r.n) for r in rows})
            return Tally(counts, counted_at, live=False)
    return Tally(outbox_counts(session), now, live=True)
