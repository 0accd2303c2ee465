"""Where posts are stored: upsert by guid, find, list and feature (feeds: ``posts.feeds``).

Every function takes an open session (``Database.transaction()``) so the caller decides what
one transaction holds; a feed's entries go in through one call inside one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, and_, col, or_, select

from digest.clock import utcnow
from digest.errors import InvalidInput, PostNotFound
from digest.models import Post
from digest.posts.entries import PostData, canonical_link
from digest.posts.featuring import is_featured

# The fields a feed owns: copied on every poll. The editor's fields are never touched here.
_FEED_FIELDS = (
    "title",
    "link",
    "summary",
    "content_html",
    "author",
    "categories",
    "tags",
    "image_url",
    "image_alt",
    "sticky",
)


@dataclass
class UpsertCounts:
    """What one batch of posts did to the store."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def upsert_posts(
    session: Session, posts: Iterable[PostData], *, source: str, now: datetime | None = None
) -> UpsertCounts:
    """Insert new posts and update changed ones in place (same guid); never duplicate."""
    now = now or utcnow()
    counts = UpsertCounts()
    batch = {p.guid: p for p in posts}  # a feed listing an item twice keeps the last
    existing = {}
    if batch:
        rows = session.exec(select(Post).where(col(Post.guid).in_(list(batch))))
        existing = {row.guid: row for row in rows}
    for guid, data in batch.items():
        row = existing.get(guid)
        if row is None:
            published = data.published_at or now  # no date in the feed: first seen is the date
            session.add(
                Post(
                    guid=guid,
                    source=source,
                    published_at=published,
                    updated_at=data.updated_at or published,
                    first_seen_at=now,
                    **{f: getattr(data, f) for f in _FEED_FIELDS},
                )
            )
            counts.inserted += 1
            continue
        changed = False
        for name in _FEED_FIELDS:
            if getattr(row, name) != getattr(data, name):
                setattr(row, name, getattr(data, name))
                changed = True
        # A dateless post keeps the date it was first seen with, so it does not jump to the top.
        if data.published_at is not None and row.published_at != data.published_at:
            row.published_at = data.published_at
            changed = True
        if data.updated_at is not None and row.updated_at != data.updated_at:
            row.updated_at = data.updated_at
            changed = True
        if changed:
            row.source = source
            session.add(row)
            counts.updated += 1
        else:
            counts.unchanged += 1
    session.flush()
    return counts


def add_post(
    session: Session, *, title: str, url: str, summary: str = "", featured: bool = False
) -> tuple[Post, bool]:
    """Add a post by hand (or update the one with that link); returns (post, created)."""
    guid = canonical_link(url)
    row = session.exec(select(Post).where(col(Post.guid) == guid)).first()
    created = row is None
    if row is None:
        row = Post(guid=guid, source="manual", title=title, link=url)
    row.title, row.link, row.summary = title, url, summary
    if featured:
        row.editor_featured, row.featured_until = True, None
    session.add(row)
    session.flush()
    return row, created


#: The largest id the posts table can hold (a 32-bit integer on PostgreSQL).
MAX_POST_ID = 2**31 - 1


def find_post(session: Session, ident: str) -> Post:
    """The post with that id, guid or link; PostNotFound otherwise."""
    text = ident.strip()
    # ASCII digits only ("²" is a digit to isdigit, not to int), within the 32-bit id column.
    if text.isascii() and text.isdigit() and int(text) <= MAX_POST_ID:
        row = session.get(Post, int(text))
        if row is not None:
            return row
    clauses = [col(Post.guid) == text, col(Post.link) == text]
    if text.lower().startswith(("http://", "https://")):
        clauses.append(col(Post.guid) == canonical_link(text))
    row = session.exec(select(Post).where(or_(*clauses)).order_by(col(Post.id))).first()
    if row is None:
        raise PostNotFound(f"no post with id, guid or link {ident!r}")
    return row


def set_featured(
    session: Session,
    ident: str,
    featured: bool,
    *,
    until: datetime | None = None,
    newsletter_id: int | None = None,
) -> Post:
    """The editor's word on a post: featured (optionally until a time) or not featured, in
    every newsletter or in one (``newsletter_id``)."""
    if until is not None and not featured:
        raise InvalidInput("an end time only goes with featuring a post")
    row = find_post(session, ident)
    named = list(row.featured_in or []) if row.editor_featured else []
    everywhere = row.editor_featured is True and not named
    if newsletter_id is None:
        row.editor_featured, row.featured_in = featured, []
    elif featured:
        # Featured everywhere already stays so; otherwise this newsletter joins the list.
        row.editor_featured = True
        row.featured_in = [] if everywhere else sorted({*named, newsletter_id})
    elif everywhere:
        raise InvalidInput(
            "it is featured in every newsletter: unfeature it, then feature it in the ones you want"
        )
    else:
        row.featured_in = [n for n in named if n != newsletter_id]
        # Featured nowhere by the editor any more: the source and categories decide again.
        row.editor_featured = True if row.featured_in else None
        featured = bool(row.featured_in)
    if until is not None or not featured:
        row.featured_until = until if featured else None
    session.add(row)
    session.flush()
    return row


def list_posts(
    session: Session,
    *,
    limit: int = 50,
    since: datetime | None = None,
    before: tuple[datetime, int] | None = None,
) -> list[Post]:
    """The newest posts first; ``before`` (published_at, id) of the last post of a page gives
    the next page (keyset: every page costs the same however many posts there are)."""
    query = select(Post).order_by(col(Post.published_at).desc(), col(Post.id).desc())
    if since is not None:
        query = query.where(col(Post.published_at) >= since)
    if before is not None:
        at, last_id = before
        query = query.where(
            or_(
                col(Post.published_at) < at,
                and_(col(Post.published_at) == at, col(Post.id) < last_id),
            )
        )
    return list(session.exec(query.limit(limit)))


def featured_posts(
    session: Session,
    featured_categories: Sequence[str],
    now: datetime,
    *,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[Post]:
    """The posts featured at ``now``, newest first (rules of ``featuring.is_featured``)."""
    # SQL narrows to posts that can still be featured; the category test (case- and
    # apostrophe-insensitive, inside a JSON list) is done by the same pure rule as the composer.
    query = (
        select(Post)
        .where(or_(col(Post.editor_featured).is_(None), col(Post.editor_featured).is_(True)))
        .where(or_(col(Post.featured_until).is_(None), col(Post.featured_until) > now))
        .order_by(col(Post.published_at).desc(), col(Post.id).desc())
    )
    if since is not None:
        query = query.where(col(Post.published_at) >= since)
    found = [p for p in session.exec(query) if is_featured(p, featured_categories, now)]
    return found[:limit] if limit is not None else found


def set_strip_order(session: Session, post_ids: Sequence[int]) -> list[int]:
    """Give these posts the places 1, 2, ... of the Don't Miss strip in this order; every other
    post loses its place (it follows the placed ones, newest first). The previous order (the
    ids that had a place, by place) comes back, for the audit log."""
    ids = list(dict.fromkeys(post_ids))
    found = {p.id: p for p in session.exec(select(Post).where(col(Post.id).in_(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise PostNotFound(f"no post with id {missing[0]}")
    placed = session.exec(
        select(Post).where(col(Post.strip_position).is_not(None)).order_by(col(Post.strip_position))
    ).all()
    before = [p.id for p in placed if p.id is not None]
    for post in placed:
        post.strip_position = None
        session.add(post)
    for place, post_id in enumerate(ids, start=1):
        found[post_id].strip_position = place
        session.add(found[post_id])
    session.flush()
    return before
