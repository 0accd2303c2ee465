"""The order of the "Don't Miss" strip: an editor places posts (move up / move down on the
Posts page), and every digest puts them in that order; unplaced ones follow, newest first."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as h_settings
from hypothesis import strategies as st

from digest import audit, newsletters
from digest.clock import utcnow
from digest.compose.select import Candidate, Limits, Profile, select
from digest.config import Settings
from digest.db import Database
from digest.newsletter_config import configure
from digest.planning import candidates
from digest.posts import store
from tests.support.alerts import post
from tests.support.desk import csrf_of, desk_client
from tests.support.web import make_app

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def _candidate(i: int, position: int | None, featured: bool = True) -> Candidate:
    return Candidate(
        id=i,
        title=f"post {i}",
        link=f"https://news.example.com/{i}",
        summary="",
        topics=frozenset(),
        published_at=NOW - timedelta(hours=i),  # a higher id is older
        first_seen_at=NOW - timedelta(hours=i),
        featured=featured,
        strip_position=position,
    )


@h_settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.integers(1, 20)), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 5),
)
def test_the_strip_shows_placed_posts_in_place_order_then_the_newest(
    spec: list[tuple[int | None, bool]], max_featured: int
) -> None:
    pool = [_candidate(i + 1, pos, featured) for i, (pos, featured) in enumerate(spec)]
    got = select(pool, Profile("daily"), NOW, Limits(max_featured, 10, 1)).featured
    featured = [c for c in pool if c.featured]
    placed = sorted((c for c in featured if c.strip_position), key=lambda c: c.strip_position)  # type: ignore[arg-type, return-value]
    rest = sorted((c for c in featured if not c.strip_position), key=lambda c: c.published_at)
    expected = [*placed, *reversed(rest)][:max_featured]
    assert [c.id for c in got] == [c.id for c in expected]


def _digest_strip(db: Database, settings: Settings) -> list[int]:
    """The Don't Miss of a new reader's digest made now, as the composer picks it."""
    with db.transaction() as session:
        config = configure(newsletters.by_id(session, 1), settings)
        pool = candidates(session, config, utcnow())
    limits = Limits.from_settings(settings)
    return [c.id for c in select(pool, Profile("daily"), utcnow(), limits).featured]


@pytest.mark.parametrize("move", ["down", "up"])
async def test_an_editor_moves_a_post_and_digests_follow(
    db: Database, make_settings, move: str
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url)
    older = post(db, "Harbour festival returns", first_seen_at=utcnow() - timedelta(hours=3))
    newer = post(db, "Tram line opens", first_seen_at=utcnow() - timedelta(hours=1))
    with db.transaction() as session:
        for pid in (older, newer):
            store.set_featured(session, str(pid), True)
    assert _digest_strip(db, settings) == [newer, older]  # newest first until someone places

    http, _ = await desk_client(make_app(settings, db), db, "editor")
    async with aclosing(http):
        page = await http.get("/desk/posts")
        strip = page.text.split("Don't Miss now")[1].split("Latest posts")[0]
        label = (
            "Move Tram line opens down" if move == "down" else "Move Harbour festival returns up"
        )
        assert label in strip
        form = strip.split(f'aria-label="{label}"')[0].rsplit("<form", 1)[1]
        order = form.split('name="order" value="')[1].split('"')[0]
        moved = await http.post(
            "/desk/posts/strip", data={"csrf_token": csrf_of(form), "order": order}
        )
        assert moved.status_code == 303
        again = await http.get("/desk/posts")
    assert _digest_strip(db, settings) == [older, newer]
    strip = again.text.split("Don't Miss now")[1].split("Latest posts")[0]
    assert strip.index("Harbour festival returns") < strip.index("Tram line opens")
    with db.transaction() as session:
        [entry] = audit.recent(session, action="post.strip_order")
        assert entry.actor == "editor@newsroom.example"
        assert entry.after == {"order": [older, newer]}


async def test_a_viewer_cannot_reorder_and_bad_orders_are_refused(
    db: Database, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url)
    pid = post(db, "Tram line opens")
    with db.transaction() as session:
        store.set_featured(session, str(pid), True)
    app = make_app(settings, db)
    viewer, token = await desk_client(app, db, "viewer")
    async with aclosing(viewer):
        refused = await viewer.post("/desk/posts/strip", data={"csrf_token": token, "order": pid})
        assert refused.status_code == 403
        page = (await viewer.get("/desk/posts")).text
        assert "Tram line opens" in page and 'name="order"' not in page
    editor, token = await desk_client(app, db, "editor")
    async with aclosing(editor):
        for bad, status in (("", 422), ("1,x", 422), ("٣", 422), ("999999", 404)):
            answer = await editor.post(
                "/desk/posts/strip", data={"csrf_token": token, "order": bad}
            )
            assert answer.status_code == status, (bad, answer.text[:200])
        no_token = await editor.post("/desk/posts/strip", data={"order": str(pid)})
        assert no_token.status_code == 403
    with db.transaction() as session:
        assert store.find_post(session, str(pid)).strip_position is None
