"""The feeds the site polls: add, remove and list them, and note how each poll went.

Every function takes an open session (``Database.transaction()``), as ``posts.store`` does; the
posts a feed brings are stored there, not here.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from digest.errors import FeedNotFound
from digest.models import Feed


def get_feed(session: Session, url: str) -> Feed | None:
    """The feed row with that URL, or None."""
    return session.exec(select(Feed).where(col(Feed.url) == url.strip())).first()


def add_feed(session: Session, url: str) -> tuple[Feed, bool]:
    """Add a feed URL (no-op if present); returns (feed, created)."""
    row = get_feed(session, url)
    if row is not None:
        return row, False
    row = Feed(url=url.strip())
    session.add(row)
    session.flush()
    return row, True


def remove_feed(session: Session, url: str) -> None:
    """Forget a feed; its posts stay. FeedNotFound when it is not stored."""
    row = get_feed(session, url)
    if row is None:
        raise FeedNotFound(f"no feed with URL {url!r} (see digest feeds list)")
    session.delete(row)
    session.flush()


def list_feeds(session: Session) -> list[Feed]:
    """Every stored feed, oldest first."""
    return list(session.exec(select(Feed).order_by(col(Feed.id))))


def record_success(
    session: Session,
    url: str,
    *,
    now: datetime,
    title: str = "",
    etag: str | None = None,
    last_modified: str | None = None,
    not_modified: bool = False,
) -> None:
    """Note a good poll: validators kept, error cleared."""
    row, _ = add_feed(session, url)
    row.last_polled_at = row.last_ok_at = now
    row.last_error = row.failing_since = None
    if not not_modified:
        # A validator too long for its column is dropped, never cut: a cut one never matches.
        row.etag = etag if etag and len(etag) <= 500 else None
        row.last_modified = last_modified if last_modified and len(last_modified) <= 100 else None
        if title:
            row.title = title[:500]
    session.add(row)


def record_failure(session: Session, url: str, *, now: datetime, error: str) -> None:
    """Note a failed poll: the error, and since when the feed has been failing."""
    row, _ = add_feed(session, url)
    row.last_polled_at = now
    row.last_error = error[:1000]
    if row.failing_since is None:
        row.failing_since = now
    session.add(row)
