"""Which posts are featured ("Don't Miss"): pure rules, no store, so the composer can use them.

A post is featured when the editor featured it, when the source marked it sticky, or when it
is in one of the featured categories. The editor's "unfeature" wins over the source, and an
end time (``featured_until``) ends the feature whatever made it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from digest.errors import InvalidInput
from digest.periods import check_timezone

# Curly and modifier apostrophes: "Don’t Miss" in a feed must match "Don't Miss" in settings.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u0060": "'"})
_SPACE = re.compile(r"\s+")
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([mhdw])\s*$", re.I)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


def parse_until(
    value: str, zone: str, now: datetime, *, name: str = "The end time"
) -> datetime | None:
    """A feature's end time (aware: in the zone it was written in, the site's ``zone`` when it
    names none, UTC for a duration), as the CLI's ``--until`` and the desk's form give it: ISO
    8601 (no zone: the site's ``zone``) or a duration from ``now`` (36h, 2d); empty: no end.

    ``InvalidInput`` (its sentence starting with ``name``) for text that is neither, or a time
    that has passed."""
    text = value.strip()
    if not text:
        return None
    try:
        match = _DURATION.match(text)
        if match:
            when = now + timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
        else:
            when = datetime.fromisoformat(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=check_timezone(zone))
        when.astimezone(UTC)  # a year 1 or 9999 read in a zone may leave the calendar
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{name} must be a date and time like 2026-12-01T18:00 or a duration like 36h "
            f"or 2d, not {value!r}"
        ) from None
    if when <= now:
        raise InvalidInput(f"{name} {value!r} is in the past: that time has passed")
    return when
