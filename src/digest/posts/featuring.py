"""Which posts are featured ("Don't Miss"): pure rules, no store, so the composer can use them.

A post is featured when the editor featured it, when the source marked it sticky, or when it
is in one of the featured categories. The editor's "unfeature" wins over the source, and an
end time (``featured_until``) ends the feature whatever made it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

# Curly and modifier apostrophes: "Don’t Miss" in a feed must match "Don't Miss" in settings.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u0060": "'"})
_SPACE = re.compile(r"\s+")


class FeaturablePost(Protocol):
    """The fields of a post the rules read (a ``Post`` row or anything shaped like one)."""

    sticky: bool
    editor_featured: bool | None
    featured_until: datetime | None
    categories: list[str]


def normalize_category(name: str) -> str:
    """A category name for comparison: case-folded, straight apostrophes, single spaces."""
    return _SPACE.sub(" ", name.translate(_APOSTROPHES)).strip().casefold()


def featured_category_keys(featured_categories: Iterable[str]) -> frozenset[str]:
    """The normalised names of the featured categories."""
    return frozenset(normalize_category(c) for c in featured_categories if c.strip())


def in_featured_category(categories: Iterable[str], featured_categories: Iterable[str]) -> bool:
    """Whether any of the categories is a featured one (case- and apostrophe-insensitive)."""
    keys = featured_category_keys(featured_categories)
    return any(normalize_category(c) in keys for c in categories)


def is_featured(
    post: FeaturablePost,
    featured_categories: Iterable[str],
    now: datetime,
    newsletter_id: int | None = None,
) -> bool:
    """Whether the post is featured at ``now`` (an aware time), in the newsletter
    ``newsletter_id`` (None: anywhere).

    Order: an ended feature (``featured_until`` at or before now) is off; the editor's explicit
    word comes next (a feature in named newsletters only speaks for those); then the source's
    sticky flag; then the featured categories.
    """
    if post.featured_until is not None and post.featured_until <= now:
        return False
    featured_in = getattr(post, "featured_in", None) or []
    if post.editor_featured is True and featured_in and newsletter_id is not None:
        if newsletter_id in featured_in:
            return True
    elif post.editor_featured is not None:
        return post.editor_featured
    if post.sticky:
        return True
    return in_featured_category(post.categories or [], featured_categories)
