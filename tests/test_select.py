"""Selection rules, stated as properties over random posts, features, topics and histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.compose.select import (
    Candidate,
    CandidatePool,
    Limits,
    Profile,
    matches_topics,
    normalize_topics,
    select,
)

T0 = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
TOPICS = ["World", "Politics", "Tech", "sport", "Culture"]


def post(
    pid: int,
    published: datetime,
    seen: datetime | None = None,
    *,
    featured: bool = False,
    topics: tuple[str, ...] = (),
) -> Candidate:
    return Candidate(
        id=pid,
        title=f"Post {pid}",
        link=f"https://news.example.com/{pid}",
        summary="",
        topics=normalize_topics(topics),
        published_at=published,
        first_seen_at=seen or published,
        featured=featured,
    )


# -- examples a reader can check by eye ------------------------------------------------------


def test_post_fetched_after_the_digest_goes_into_the_next_one() -> None:
    late = post(1, published=T0 - timedelta(minutes=5), seen=T0 + timedelta(minutes=10))
    profile = Profile(cadence="daily", last_digest_at=T0 - timedelta(days=1))
    first = select([late], profile, T0, Limits())
    assert first.skip and first.post_ids == ()
    nxt = Profile(cadence="daily", last_digest_at=first.next_last_digest_at)
    second = select([late], nxt, T0 + timedelta(days=1), Limits())
    assert second.post_ids == (1,)


def test_first_digest_looks_back_one_period_only() -> None:
    posts = [post(1, T0 - timedelta(hours=23)), post(2, T0 - timedelta(hours=25))]
    assert select(posts, Profile(cadence="daily"), T0, Limits()).post_ids == (1,)
    assert select(posts, Profile(cadence="weekly"), T0, Limits()).post_ids == (1, 2)


def test_featured_posts_lead_and_are_not_repeated_below() -> None:
    posts = [
        post(1, T0 - timedelta(hours=1), featured=True),
        post(2, T0 - timedelta(hours=2)),
        post(3, T0 - timedelta(days=30), featured=True),
    ]
    sel = select(posts, Profile(cadence="daily"), T0, Limits())
    assert [p.id for p in sel.featured] == [1, 3]
    assert [p.id for p in sel.latest] == [2]


def test_topics_match_categories_and_tags_case_insensitively() -> None:
    tech = post(1, T0 - timedelta(hours=1), topics=("TECH", "AI"))
    other = post(2, T0 - timedelta(hours=2), topics=("Sport",))
    profile = Profile(cadence="daily", topics=normalize_topics([" tech "]))
    assert select([tech, other], profile, T0, Limits()).post_ids == (1,)


def test_fewer_posts_than_the_minimum_is_a_skip_that_keeps_the_window() -> None:
    last = T0 - timedelta(days=1)
    profile = Profile(cadence="daily", last_digest_at=last)
    sel = select([post(1, T0 - timedelta(hours=1))], profile, T0, Limits(min_new_posts=2))
    assert sel.skip and "fewer than 2" in sel.reason
    assert sel.next_last_digest_at == last
    empty = select([], profile, T0, Limits())
    assert empty.skip and empty.reason == "no new posts"


# -- properties ------------------------------------------------------------------------------

minutes = st.integers(min_value=-20 * 24 * 60, max_value=2 * 24 * 60)
topic_sets = st.frozensets(st.sampled_from(TOPICS), max_size=3)


@st.composite
def candidates(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(min_value=0, max_value=40))
    out = []
    for pid in range(1, count + 1):
        published = T0 + timedelta(minutes=draw(minutes))
        lag = timedelta(minutes=draw(st.integers(min_value=-600, max_value=600)))
        out.append(
            post(
                pid,
                published,
                published + lag,
                featured=draw(st.booleans()),
                topics=tuple(draw(topic_sets)),
            )
        )
    return out


profiles = st.builds(
    Profile,
    cadence=st.sampled_from(["daily", "weekly"]),
    topics=topic_sets.map(normalize_topics),
    last_digest_at=st.none() | minutes.map(lambda m: T0 + timedelta(minutes=m)),
    received=st.frozensets(st.integers(min_value=1, max_value=40), max_size=20),
)
limits = st.builds(
    Limits,
    max_featured=st.integers(min_value=0, max_value=5),
    max_latest=st.integers(min_value=0, max_value=12),
    min_new_posts=st.integers(min_value=1, max_value=4),
)


@settings(max_examples=300)
@given(posts=candidates(), profile=profiles, lim=limits)
def test_selection_rules_hold(posts: list[Candidate], profile: Profile, lim: Limits) -> None:
    sel = select(posts, profile, T0, lim)
    ids = sel.post_ids
    # Never twice: not across sections, never what they already had, nothing from the future.
    assert len(ids) == len(set(ids))
    assert not set(ids) & profile.received
    assert all(p.arrived_at <= T0 for p in sel.featured + sel.latest)
    # Don't Miss: featured, newest first, capped, and full unless the featured ran out.
    assert all(p.featured for p in sel.featured)
    assert len(sel.featured) <= lim.max_featured
    newest = [(p.published_at, p.id) for p in sel.featured]
    assert newest == sorted(newest, reverse=True)
    open_featured = [
        p for p in posts if p.featured and p.id not in profile.received and p.arrived_at <= T0
    ]
    assert len(sel.featured) == min(lim.max_featured, len(open_featured))
    if sel.featured:
        oldest = (sel.featured[-1].published_at, sel.featured[-1].id)
        left = [p for p in open_featured if p not in sel.featured]
        assert all((p.published_at, p.id) < oldest for p in left)
    # Latest: in the window, of their topics, newest first, capped, and nothing newer left out.
    assert len(sel.latest) <= lim.max_latest
    for p in sel.latest:
        assert sel.window_start < p.arrived_at <= T0
        assert matches_topics(p, profile.topics)
    order = [(p.published_at, p.id) for p in sel.latest]
    assert order == sorted(order, reverse=True)
    eligible = [
        p
        for p in posts
        if p.id not in profile.received
        and p not in sel.featured
        and sel.window_start < p.arrived_at <= T0
        and matches_topics(p, profile.topics)
    ]
    assert len(sel.latest) == min(lim.max_latest, len(eligible))
    # Skip exactly when too few.
    assert sel.skip == (len(ids) < lim.min_new_posts)
    assert sel.next_last_digest_at == (profile.last_digest_at if sel.skip else T0)


@settings(max_examples=150)
@given(
    posts=candidates(),
    topics=topic_sets,
    cadences=st.lists(st.sampled_from(["daily", "weekly"]), min_size=1, max_size=12),
    gaps=st.lists(st.integers(min_value=60, max_value=8 * 24 * 60), min_size=12, max_size=12),
    min_new=st.integers(min_value=1, max_value=3),
)
def test_editions_in_sequence_never_repeat_and_never_lose_a_post(
    posts: list[Candidate],
    topics: frozenset[str],
    cadences: list[str],
    gaps: list[int],
    min_new: int,
) -> None:
    """Unlimited sections: every eligible post after the first window arrives exactly once."""
    lim = Limits(max_featured=1000, max_latest=1000, min_new_posts=min_new)
    pool = CandidatePool.of(posts)
    wanted = normalize_topics(topics)
    received: set[int] = set()
    last: datetime | None = None
    now = T0 - timedelta(days=10)
    first_start: datetime | None = None
    sent_at: dict[int, datetime] = {}
    for cadence, gap in zip(cadences, gaps, strict=False):
        profile = Profile(cadence, wanted, last, frozenset(received))
        sel = select(pool, profile, now, lim)
        if not sel.skip:
            if first_start is None:
                first_start = sel.window_start
            assert last is None or sel.window_start == last  # windows join, no gap
            for pid in sel.post_ids:
                assert pid not in received
                received.add(pid)
                sent_at[pid] = now
            last = sel.next_last_digest_at
        now += timedelta(minutes=gap)
    if first_start is None or last is None:
        return
    for p in posts:
        if p.featured and p.arrived_at <= last:
            assert p.id in received  # a feature is never missed
        elif first_start < p.arrived_at <= last and matches_topics(p, wanted):
            assert p.id in received, f"post {p.id} fell between windows"


@settings(max_examples=150)
@given(
    posts=candidates(),
    lim=limits,
    gaps=st.lists(st.integers(min_value=60, max_value=3 * 24 * 60), min_size=8, max_size=8),
)
def test_editions_with_limits_never_repeat(
    posts: list[Candidate], lim: Limits, gaps: list[int]
) -> None:
    received: set[int] = set()
    last: datetime | None = None
    now = T0 - timedelta(days=10)
    for gap in gaps:
        sel = select(posts, Profile("daily", frozenset(), last, frozenset(received)), now, lim)
        if not sel.skip:
            assert not set(sel.post_ids) & received
            received.update(sel.post_ids)
            last = sel.next_last_digest_at
        now += timedelta(minutes=gap)


def test_limits_come_from_settings(make_settings) -> None:  # type: ignore[no-untyped-def]
    limits = Limits.from_settings(make_settings(max_featured=2, max_latest=5, min_new_posts=3))
    assert limits == Limits(max_featured=2, max_latest=5, min_new_posts=3)


@settings(max_examples=300)
@given(
    posts=candidates(),
    profile=profiles,
    lim=limits,
    alerted=st.frozensets(st.integers(min_value=1, max_value=40), max_size=8),
    held=st.frozensets(st.integers(min_value=1, max_value=40), max_size=4),
)
def test_alerts_shape_the_digest(
    posts: list[Candidate],
    profile: Profile,
    lim: Limits,
    alerted: frozenset[int],
    held: frozenset[int],
) -> None:
    """An alerted story never comes back under Latest Posts (it may stay under Don't Miss);
    every story held back from the reader is carried, first, whatever its age, topics or the
    limits; nothing twice."""
    held = held - alerted  # a reader's state for one alert is one or the other
    profile = Profile(
        profile.cadence, profile.topics, profile.last_digest_at, profile.received, alerted, held
    )
    sel = select(posts, profile, T0, lim)
    in_pool = {p.id for p in posts}
    assert {p.id for p in sel.held} == (held & in_pool) - profile.received
    assert not {p.id for p in sel.latest} & alerted
    assert not {p.id for p in (*sel.featured, *sel.latest)} & held
    assert len(sel.post_ids) == len(set(sel.post_ids))
    assert sel.post_ids[: len(sel.held)] == tuple(p.id for p in sel.held)
    assert sel.skip == (len(sel.post_ids) < lim.min_new_posts)
    # Without alerts the same reader gets the same Don't Miss: an alert never pushes a
    # featured story out (one carried as held leaves room for the next).
    plain = select(posts, Profile(profile.cadence, profile.topics, profile.last_digest_at,
                                  profile.received), T0, lim)  # fmt: skip
    kept = [p.id for p in plain.featured if p.id not in held]
    assert [p.id for p in sel.featured][: len(kept)] == kept
