"""The topics a reader can choose from: the categories of recent posts, most used first, less
the categories that feature a post ("Don't Miss"), which say where a post goes in the digest
rather than what it is about."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

from sqlmodel import Session, col, select

from digest.models import Post

MAX_TOPICS_SHOWN = 20
RECENT_POSTS_SCANNED = 1000


def known_topics(
    session: Session, *, featuring: Collection[str], limit: int = MAX_TOPICS_SHOWN
) -> list[str]:
    """The categories of recent posts but ``featuring`` ones, most used first: what a reader
    can choose from."""
    left_out = {c.strip().casefold() for c in featuring}
    rows = session.exec(
        select(Post.categories).order_by(col(Post.published_at).desc()).limit(RECENT_POSTS_SCANNED)
    ).all()
    counts: Counter[str] = Counter()
    for categories in rows:
        counts.update(
            {
                c
                for c in categories or []
                if isinstance(c, str) and c.strip() and c.strip().casefold() not in left_out
            }
        )
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold()))
    return [name for name, _ in ranked][:limit]
