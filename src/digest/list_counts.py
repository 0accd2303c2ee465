"""The list's counts as the store keeps them (``models_counts``, migration 0011's triggers):
subscriptions by status, by newsletter, and readers joining and leaving per day.

Each read is a handful of rows whatever the size of the list, so pages and ``digest status``
that show the list's size cost the same at ten thousand readers and at a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from digest.clock import utcnow
from digest.models import Newsletter
from digest.models_counts import SubscriptionCount, SubscriptionDay, SubscriptionSlot
from digest.states import SubscriberStatus

C = SubscriptionCount.__table__  # type: ignore[attr-defined]
DAYS = SubscriptionDay.__table__  # type: ignore[attr-defined]
N = Newsletter.__table__  # type: ignore[attr-defined]
SLOTS = SubscriptionSlot.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NewsletterCounts:
    """One newsletter's subscriptions by status."""

    id: int
    slug: str
    name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Every subscription of the newsletter, whatever its status."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class Slot:
    """Active readers of one newsletter in one cadence, zone and local send hour."""

    newsletter_id: int
    cadence: str
    timezone: str
    send_hour: int
    readers: int


@dataclass(frozen=True)
class Day:
    """Readers who joined and who left on one day (UTC)."""

    day: date
    joined: int
    left: int


def _zeroes() -> dict[str, int]:
    return {s.value: 0 for s in SubscriberStatus}


def counts_by_status(session: Session, newsletter_id: int | None = None) -> dict[str, int]:
    """Subscriptions in each status (every status present, zeros included), of one
    newsletter or of all."""
    counts = _zeroes()
    query = sa.select(C.c.status, sa.func.sum(C.c.n)).group_by(C.c.status)
    if newsletter_id is not None:
        query = query.where(C.c.newsletter_id == newsletter_id)
    for status, n in session.execute(query):
        counts[status] = int(n or 0)
    return counts


def by_newsletter(session: Session) -> list[NewsletterCounts]:
    """Every newsletter, in the order readers see them, with its subscriptions by status."""
    found: dict[int, dict[str, int]] = {}
    for newsletter_id, status, n in session.execute(
        sa.select(C.c.newsletter_id, C.c.status, sa.func.sum(C.c.n)).group_by(
            C.c.newsletter_id, C.c.status
        )
    ):
        found.setdefault(newsletter_id, _zeroes())[status] = int(n)
    rows = session.execute(sa.select(N.c.id, N.c.slug, N.c.name).order_by(N.c.position, N.c.id))
    return [NewsletterCounts(r.id, r.slug, r.name, found.get(r.id, _zeroes())) for r in rows]


def daily(
    session: Session,
    days: int,
    *,
    today: date | None = None,
    newsletter_id: int | None = None,
) -> list[Day]:
    """The last ``days`` days up to ``today`` (UTC), oldest first, every day present: how many
    readers joined (became active) and left (unsubscribed, bounced, complained, erased)."""
    last = today or utcnow().date()
    first = last - timedelta(days=max(days, 1) - 1)
    query = (
        sa.select(DAYS.c.day, sa.func.sum(DAYS.c.joined), sa.func.sum(DAYS.c.departed))
        .where(DAYS.c.day >= first, DAYS.c.day <= last)
        .group_by(DAYS.c.day)
    )
    if newsletter_id is not None:
        query = query.where(DAYS.c.newsletter_id == newsletter_id)
    found = {d: (int(j or 0), int(gone or 0)) for d, j, gone in session.execute(query)}
    span = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [Day(d, *found.get(d, (0, 0))) for d in span]


def slots(session: Session) -> list[Slot]:
    """Every (newsletter, cadence, zone, send hour) that has active readers, with how many."""
    key = (SLOTS.c.newsletter_id, SLOTS.c.cadence, SLOTS.c.timezone, SLOTS.c.send_hour)
    n = sa.func.sum(SLOTS.c.n)
    rows = session.execute(sa.select(*key, n).group_by(*key).having(n > 0).order_by(*key))
    return [Slot(nl, cadence, tz, hour, int(readers)) for nl, cadence, tz, hour, readers in rows]


# Each table's key and summed columns: ``compact`` folds its rows into one per key.
_FOLDS = {
    "subscription_counts": (("newsletter_id", "status"), ("n",)),
    "subscription_days": (("day", "newsletter_id"), ("joined", "departed")),
    "subscription_slots": (("newsletter_id", "cadence", "timezone", "send_hour"), ("n",)),
}


def compact(session: Session) -> None:
    """Fold the rows of differences the triggers appended into one row per key (keys whose
    sums are all zero go), so reads stay a few rows however many changes were made.

    On PostgreSQL one statement deletes the rows it sees and inserts their sums, so a change
    committed meanwhile is neither lost nor counted twice; SQLite serialises writers, and this
    transaction holds its write lock.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    for table, (key, summed) in _FOLDS.items():
        keys, sums = ", ".join(key), ", ".join(f"sum({c})" for c in summed)
        nonzero = " OR ".join(f"sum({c}) <> 0" for c in summed)
        columns = f"{keys}, {', '.join(summed)}"
        folded = f"SELECT {keys}, {sums} FROM {{source}} GROUP BY {keys} HAVING {nonzero}"  # noqa: S608
        if postgres:
            session.execute(
                sa.text(
                    f"WITH gone AS (DELETE FROM {table} RETURNING {columns}) "  # noqa: S608
                    f"INSERT INTO {table} ({columns}) " + folded.format(source="gone")
                )
            )
        else:
            rows = session.execute(sa.text(folded.format(source=table))).all()
            session.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608
            if rows:
                marks = ", ".join(f":{c}" for c in (*key, *summed))
                session.execute(
                    sa.text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"),  # noqa: S608
                    [dict(zip((*key, *summed), row, strict=True)) for row in rows],
                )
