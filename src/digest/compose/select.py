"""Which posts one subscriber gets in one digest: Don't Miss, Latest Posts, or nothing at all.

Pure functions over plain dataclasses; no store, no clock. The caller (``editions.py``) loads
the candidates once per edition, builds a profile per subscriber, and records the outcome:
the posts sent, and ``Selection.next_last_digest_at`` as the subscriber's new window start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from digest.config import Settings
from digest.periods import cadence_length


def normalize_topics(topics: Iterable[str]) -> frozenset[str]:
    """Topics compared case-insensitively and without surrounding blanks; empty ones dropped."""
    return frozenset(t.strip().casefold() for t in topics if t and t.strip())


@dataclass(frozen=True)
class Candidate:
    """A post that may go into a digest, as the composer sees it."""

    id: int
    title: str
    link: str
    summary: str
    topics: frozenset[str]  # categories and tags, through normalize_topics
    published_at: datetime
    first_seen_at: datetime
    featured: bool = False
    # An editor's place for it in the Don't Miss strip (1 first); None: after the placed ones.
    strip_position: int | None = None
    image_url: str | None = None
    image_alt: str = ""
    author: str = ""

    @property
    def arrived_at(self) -> datetime:
        """When the post became known to us: the later of its publication and our first sight.

        A post published at 06:55 but fetched at 07:10 arrives at 07:10, so the 07:00 digest
        (which could not have seen it) leaves it to the next one instead of losing it. A post
        back-dated by its feed is taken when we first saw it, and a post scheduled for the
        future waits for its publication time.
        """
        return max(self.published_at, self.first_seen_at)


@dataclass(frozen=True)
class Profile:
    """What selection needs to know about one subscriber."""

    cadence: str
    topics: frozenset[str] = frozenset()  # normalised; empty means every topic
    last_digest_at: datetime | None = None  # end of the window their last digest covered
    received: frozenset[int] = frozenset()  # ids of every post they have already had
    # Breaking news: posts they had (or will have) as an alert, which Latest Posts leaves
    # out; and posts whose alert their budget or quiet hours held back, which this digest
    # must carry, whatever their age or topics.
    alerted: frozenset[int] = frozenset()
    held: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Limits:
    """How many posts each section holds, and the fewest new posts worth a mail."""

    max_featured: int = 3
    max_latest: int = 10
    min_new_posts: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits of ``Settings`` (``max_featured``, ``max_latest``, ``min_new_posts``)."""
        return cls(settings.max_featured, settings.max_latest, settings.min_new_posts)


@dataclass(frozen=True)
class Selection:
    """The outcome for one subscriber at one edition time."""

    featured: tuple[Candidate, ...]
    latest: tuple[Candidate, ...]
    window_start: datetime  # exclusive
    window_end: datetime  # inclusive: the edition time
    skip: bool
    reason: str = ""
    # Where the next window starts: the edition time when a digest goes out; unchanged on a
    # skip, so the posts of a skipped window are still offered next time.
    next_last_digest_at: datetime | None = None
    # Breaking news this reader was not alerted to (budget, quiet hours, or too late), shown
    # first and marked as such.
    held: tuple[Candidate, ...] = ()

    @property
    def post_ids(self) -> tuple[int, ...]:
        """Every selected post in display order: held alerts, Don't Miss, Latest Posts."""
        return tuple(p.id for p in (*self.held, *self.featured, *self.latest))


@dataclass(frozen=True)
class CandidatePool:
    """The candidates of one edition, sorted newest first once for every subscriber."""

    posts: tuple[Candidate, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, posts: Iterable[Candidate]) -> CandidatePool:
        """A pool from any posts: duplicates by id dropped, newest published first."""
        unique = {p.id: p for p in posts}
        ordered = sorted(unique.values(), key=lambda p: (p.published_at, p.id), reverse=True)
        return cls(tuple(ordered))

    @cached_property
    def strip(self) -> tuple[Candidate, ...]:
        """The featured posts in the Don't Miss strip's order, worked out once per edition
        rather than once per subscriber."""
        return tuple(strip_order(p for p in self.posts if p.featured))


def strip_order(featured: Iterable[Candidate]) -> list[Candidate]:
    """Featured posts in the order of the Don't Miss strip: the places an editor set first
    (1, 2, ...), then the rest as they come (the pool's newest published first)."""
    posts = list(featured)
    placed = [p for p in posts if p.strip_position is not None]
    if not placed:
        return posts
    rest = [p for p in posts if p.strip_position is None]
    return sorted(placed, key=lambda p: p.strip_position or 0) + rest


def window_start(profile: Profile, now: datetime) -> datetime:
    """Where this subscriber's window opens: their previous digest, or one period back.

    Starting at the previous digest whatever the cadence is now means a subscriber who moves
    from weekly to daily (or back) neither misses nor repeats a post.
    """
    if profile.last_digest_at is not None:
        return profile.last_digest_at
    return now - cadence_length(profile.cadence)


def matches_topics(post: Candidate, topics: frozenset[str]) -> bool:
    """Whether a post is within a subscriber's topics (no topics: everything is)."""
    return not topics or not topics.isdisjoint(post.topics)


def select(
    candidates: CandidatePool | Sequence[Candidate],
    profile: Profile,
    now: datetime,
    limits: Limits,
) -> Selection:
    """The posts of one subscriber's digest at ``now``, or a skip saying why.

    Held back: the stories whose alert their budget or quiet hours held (or that came too
    late), all of them, first. Don't Miss: featured posts not yet received, in the strip's
    order (an editor's places first, then newest first).
    Latest Posts: posts of their topics that arrived in the window, newest first, not already
    under Don't Miss and not already sent to them as an alert. When more arrived than
    ``max_latest``, the oldest are left out for good: a digest is news, and the next one
    starts where this one ended.
    """
    pool = candidates if isinstance(candidates, CandidatePool) else CandidatePool.of(candidates)
    start = window_start(profile, now)
    received = profile.received
    held = [p for p in pool.posts if p.id in profile.held and p.id not in received]

    def is_open(post: Candidate) -> bool:
        return post.id not in received and post.id not in profile.held and post.arrived_at <= now

    featured: list[Candidate] = []
    for post in pool.strip:
        if len(featured) == limits.max_featured:
            break
        if is_open(post):
            featured.append(post)
    chosen = {p.id for p in featured}
    latest: list[Candidate] = []
    for post in pool.posts:
        if len(latest) == limits.max_latest:
            break
        # A featured post the strip has no room for may still be news in Latest Posts.
        if (
            post.id not in chosen
            and is_open(post)
            and start < post.arrived_at
            and post.id not in profile.alerted
            and matches_topics(post, profile.topics)
        ):
            latest.append(post)
    total = len(held) + len(featured) + len(latest)
    if total == 0:
        reason = "no new posts"
    elif total < limits.min_new_posts:
        reason = f"{total} new post(s), fewer than {limits.min_new_posts}"
    else:
        reason = ""
    return Selection(
        featured=tuple(featured),
        latest=tuple(latest),
        window_start=start,
        window_end=now,
        skip=bool(reason),
        reason=reason,
        next_last_digest_at=profile.last_digest_at if reason else now,
        held=tuple(held),
    )
