"""The editions as the desk lists them: of one newsletter or all, newest first, a page at a
time, each with its deliveries counted by state.

Pages are keyset-paginated on (edition_at, id): the next page starts after the last edition
shown, so a page costs the same however far back it is, and an edition made meanwhile does
not shift the pages already seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest.errors import NotFound
from digest.models import Edition
from digest.stats import edition_counts

E = Edition.__table__  # type: ignore[attr-defined]
#: The most editions one page shows.
PAGE_SIZE = 25


@dataclass(frozen=True)
class EditionLine:
    """One edition and its deliveries by state."""

    id: int
    newsletter_id: int
    key: str
    cadence: str
    subject: str
    edition_at: datetime
    is_test: bool
    recipients: int
    counts: dict[str, int]


@dataclass(frozen=True)
class EditionPage:
    """One page of editions, and the id to start the next page after (None: the last page)."""

    editions: list[EditionLine]
    next_after: int | None


_COLUMNS = (
    E.c.id,
    E.c.newsletter_id,
    E.c.key,
    E.c.cadence,
    E.c.subject,
    E.c.edition_at,
    E.c.is_test,
    E.c.recipients,
)


def _lines(session: Session, rows: list[sa.Row]) -> list[EditionLine]:  # type: ignore[type-arg]
    counts = edition_counts(session, [r.id for r in rows])
    return [
        EditionLine(
            r.id,
            r.newsletter_id,
            r.key,
            r.cadence,
            r.subject or "",
            r.edition_at,
            bool(r.is_test),
            r.recipients or sum(counts[r.id].values()),
            counts[r.id],
        )
        for r in rows
    ]


def page(
    session: Session,
    *,
    newsletter_id: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
) -> EditionPage:
    """Editions (of one newsletter, or all) newest first, starting after edition ``after``
    (an id the previous page ended with; an unknown one gives an empty page)."""
    query = sa.select(*_COLUMNS).order_by(E.c.edition_at.desc(), E.c.id.desc()).limit(limit + 1)
    if newsletter_id is not None:
        query = query.where(E.c.newsletter_id == newsletter_id)
    if after is not None:
        then = sa.select(E.c.edition_at).where(E.c.id == after).scalar_subquery()
        query = query.where(
            sa.or_(E.c.edition_at < then, sa.and_(E.c.edition_at == then, E.c.id < after))
        )
    rows = list(session.execute(query).all())
    more = len(rows) > limit
    lines = _lines(session, rows[:limit])
    return EditionPage(lines, lines[-1].id if more and lines else None)


def one(session: Session, edition_id: int) -> EditionLine:
    """The edition with this id and its counts; NotFound when there is none."""
    rows = list(session.execute(sa.select(*_COLUMNS).where(E.c.id == edition_id)).all())
    if not rows:
        raise NotFound(f"there is no edition #{edition_id}")
    return _lines(session, rows)[0]
