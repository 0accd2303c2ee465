"""The archive: published editions newest first, a page at a time, of every public newsletter
or of one, and one edition's web version. Test sends and the editions of private newsletters
are never published."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from digest.errors import NotFound
from digest.models import Edition, Newsletter

PAGE_SIZE = 20


@dataclass(frozen=True)
class ArchiveEntry:
    """One edition as the archive lists it, under a title no other line of its page shares."""

    id: int
    title: str
    cadence: str
    edition_at: datetime
    newsletter: str = ""  # its name


@dataclass(frozen=True)
class ArchivePage:
    """One page of the archive and its neighbours (None where there is none)."""

    editions: Sequence[ArchiveEntry]
    page: int
    previous_page: int | None
    next_page: int | None


def _public_ids(session: Session) -> dict[int, str]:
    """The public newsletters (archived ones too: their past editions stay), id to name."""
    rows = session.exec(select(Newsletter.id, Newsletter.name).where(col(Newsletter.public)))
    return {int(i or 0): name for i, name in rows}


def archive_page(
    session: Session, page: int, *, size: int = PAGE_SIZE, newsletter_id: int | None = None
) -> ArchivePage:
    """Page ``page`` (from 1) of the published editions, newest first: of every public
    newsletter, or of the public one ``newsletter_id``."""
    names = _public_ids(session)
    ids = [i for i in names if newsletter_id is None or i == newsletter_id]
    published = sa.and_(col(Edition.is_test).is_(False), col(Edition.newsletter_id).in_(ids))
    total = int(session.exec(select(func.count()).select_from(Edition).where(published)).one())
    editions = session.exec(
        select(Edition)
        .where(published)
        .order_by(col(Edition.edition_at).desc(), col(Edition.id).desc())
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    last_page = max(1, -(-total // size))
    return ArchivePage(
        _entries(editions, names if len(names) > 1 else {}),
        page,
        previous_page=page - 1 if page > 1 else None,
        next_page=page + 1 if page < last_page else None,
    )


def _entries(editions: Sequence[Edition], names: dict[int, str]) -> list[ArchiveEntry]:
    """The editions under their subjects; editions sharing one (each hour's edition of a day
    leads with the same story) are told apart by their cadence and slot."""
    titles = [e.subject or f"The {e.cadence} digest" for e in editions]
    seen = Counter(titles)
    entries: list[ArchiveEntry] = []
    for edition, subject in zip(editions, titles, strict=True):
        at = edition.edition_at
        slot = f" ({edition.cadence}, {at:%B} {at.day}, {at:%H:%M} UTC)"
        title = subject + slot if seen[subject] > 1 else subject
        name = names.get(edition.newsletter_id, "")
        entries.append(ArchiveEntry(edition.id or 0, title, edition.cadence, at, name))
    return entries


def web_version(session: Session, edition_id: int) -> str:
    """The web version of a published edition, as the composer rendered it."""
    edition = session.get(Edition, edition_id)
    if (
        edition is None
        or edition.is_test
        or not edition.web_html
        or edition.newsletter_id not in _public_ids(session)
    ):
        raise NotFound("there is no edition with that number in the archive")
    return edition.web_html
