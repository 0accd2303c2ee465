"""What the desk shows about posts: a page of the latest with why each is featured (or not),
who featured it, which newsletters it went out in as breaking news, and the "Don't Miss" strip
each newsletter's composer would build now.

Read-only; the changes (feature, unfeature, alert) are ``posts.store`` and ``alerts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest import newsletters
from digest.config import Settings
from digest.errors import InvalidInput
from digest.models import AuditEntry, Newsletter, Post
from digest.models_campaigns import Alert
from digest.newsletter_config import configure
from digest.planning import candidates  # the composer's own pick, not a copy of it
from digest.posts import store
from digest.posts.featuring import featured_category_keys, is_featured, normalize_category

#: The audit action the desk writes when an editor features a post ("post 12" as target).
FEATURE_ACTION = "post.feature"


@dataclass(frozen=True)
class FeaturedState:
    """Whether a post is featured now, why (or why not), and until when."""

    featured: bool
    reason: str
    until: datetime | None = None


@dataclass(frozen=True)
class PostLine:
    """One post as the desk's list shows it."""

    post: Post
    state: FeaturedState
    featured_by: str | None = None  # the last desk/CLI/API actor who featured it
    alerted_in: list[str] = field(default_factory=list)  # newsletters' slugs


@dataclass(frozen=True)
class Strip:
    """One newsletter's "Don't Miss" strip as its composer would build it now."""

    slug: str
    name: str
    posts: list[Post]
    limit: int


def featured_state(
    post: Post, featured_categories: Sequence[str], now: datetime, slugs: dict[int, str]
) -> FeaturedState:
    """Why ``post`` is featured at ``now`` or not, in the words of ``featuring.is_featured``'s
    order of rules (``slugs`` names the newsletters of an editor's feature in some only)."""
    featured = is_featured(post, featured_categories, now)
    until = post.featured_until
    if until is not None and until <= now:
        return FeaturedState(False, f"feature ended {until:%Y-%m-%d %H:%M} UTC", until)
    if post.editor_featured is True:
        named = [slugs.get(n, f"#{n}") for n in post.featured_in or []]
        where = f" in {', '.join(named)} only" if named else ""
        return FeaturedState(featured, f"featured by an editor{where}", until)
    if post.editor_featured is False:
        return FeaturedState(False, "unfeatured by an editor", None)
    if post.sticky:
        return FeaturedState(True, "sticky at the source", until)
    keys = featured_category_keys(featured_categories)
    matched = [c for c in post.categories or [] if normalize_category(c) in keys]
    if matched:
        return FeaturedState(True, f"in the featured category {matched[0]}", until)
    return FeaturedState(False, "", None)


def parse_cursor(text: str | None) -> tuple[datetime, int] | None:
    """The ``before`` of a page link ("<published_at ISO>_<id>"); InvalidInput if malformed."""
    if not text:
        return None
    at, _, ident = text.rpartition("_")
    try:
        when = datetime.fromisoformat(at)
        number = int(ident)
        if when.tzinfo is not None:
            when = when.astimezone(UTC)  # a year-1 or year-9999 edge does not convert
    except (ValueError, OverflowError):
        raise InvalidInput("this page link is damaged; start again from the first page") from None
    if when.tzinfo is None or not 0 < number < 2**31:
        raise InvalidInput("this page link is damaged; start again from the first page")
    return when, number


def cursor_of(post: Post) -> str:
    """The ``before`` value of the page after the one ending with ``post``."""
    return f"{post.published_at.isoformat()}_{post.id}"


def latest(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    limit: int = 50,
    before: tuple[datetime, int] | None = None,
) -> tuple[list[PostLine], str | None]:
    """A page of the newest posts with their state, and the cursor of the next page (None at
    the end)."""
    rows = store.list_posts(session, limit=limit + 1, before=before)
    more, rows = len(rows) > limit, rows[:limit]
    ids = [int(p.id or 0) for p in rows]
    slugs = {int(n.id or 0): n.slug for n in newsletters.listed(session, archived=True)}
    alerted = alerted_in(session, ids)
    by = featured_by(session, ids)
    lines = [
        PostLine(
            post=p,
            state=featured_state(p, settings.featured_categories, now, slugs),
            featured_by=by.get(int(p.id or 0)) if p.editor_featured else None,
            alerted_in=[slugs.get(n, f"#{n}") for n in alerted.get(int(p.id or 0), [])],
        )
        for p in rows
    ]
    return lines, (cursor_of(rows[-1]) if more and rows else None)


def alerted_in(session: Session, post_ids: Sequence[int]) -> dict[int, list[int]]:
    """The newsletters (ids) each post was raised in as breaking news."""
    if not post_ids:
        return {}
    found: dict[int, list[int]] = {}
    query = (
        select(Alert.post_id, Alert.newsletter_id)
        .where(col(Alert.post_id).in_(list(post_ids)))
        .order_by(col(Alert.raised_at))
    )
    for post_id, newsletter_id in session.exec(query):
        found.setdefault(int(post_id), []).append(int(newsletter_id))
    return found


def featured_by(session: Session, post_ids: Sequence[int]) -> dict[int, str]:
    """Who last featured each post, from the audit log ("editor@x via desk")."""
    if not post_ids:
        return {}
    targets = {f"post {pid}": pid for pid in post_ids}
    newest = (
        sa.select(sa.func.max(AuditEntry.id))
        .where(AuditEntry.action == FEATURE_ACTION, col(AuditEntry.target).in_(list(targets)))
        .group_by(AuditEntry.target)
    )
    rows = session.exec(select(AuditEntry).where(col(AuditEntry.id).in_(newest)))
    return {targets[e.target]: f"{e.actor} via {e.via}" for e in rows}


def dont_miss(session: Session, settings: Settings, now: datetime) -> list[Strip]:
    """Each live newsletter's "Don't Miss" as the composer picks it at ``now`` (before leaving
    out what a reader already had): its featured candidates in the strip's order."""
    strips = []
    for row in newsletters.listed(session):
        config = configure(row, settings)
        pool = candidates(session, config, now)
        ids = [p.id for p in pool.strip][: settings.max_featured]
        by_id = {p.id: p for p in session.exec(select(Post).where(col(Post.id).in_(ids)))}
        posts = [by_id[i] for i in ids if i in by_id]
        strips.append(Strip(row.slug, _name(row), posts, settings.max_featured))
    return strips


def _name(row: Newsletter) -> str:
    return row.name or row.slug
