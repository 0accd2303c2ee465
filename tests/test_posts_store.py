"""The posts store on SQLite and PostgreSQL: upserts in place, features, feeds, and polling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from digest.config import Settings
from digest.db import Database
from digest.errors import FeedNotFound, InvalidInput, PostNotFound
from digest.models import Feed, Post
from digest.posts import feeds, store
from digest.posts.entries import PostData
from digest.posts.parse import parse_source
from digest.posts.poll import import_source, poll_all, poll_feed
from tests.support.feed_server import FeedServer

FEEDS = Path(__file__).parent / "feeds"
RSS = (FEEDS / "rss2_media.xml").read_bytes()
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
CATS = ["Featured", "Don't Miss"]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def cfg(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, allow_private_feeds=True, feed_timeout=2.0)


def count_posts(db: Database) -> int:
    with db.transaction() as session:
        return session.exec(select(func.count()).select_from(Post)).one()


def posts_of(name: str) -> list[PostData]:
    return parse_source((FEEDS / name).read_bytes(), source=name).posts


def upsert(db: Database, posts: list[PostData], now: datetime = NOW) -> store.UpsertCounts:
    with db.transaction() as session:
        return store.upsert_posts(session, posts, source="test", now=now)


def test_upsert_inserts_then_updates_in_place(db: Database) -> None:
    first = upsert(db, posts_of("rss2_media.xml"))
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    again = upsert(db, posts_of("rss2_media.xml"))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    changed = posts_of("rss2_media.xml")
    changed[0].title = "City Council Approves New Tram Line (updated)"
    changed[0].categories = ["Local"]
    result = upsert(db, changed[:1])  # the other two left the feed: they stay in the store
    assert (result.inserted, result.updated) == (0, 1)
    assert count_posts(db) == 3
    with db.transaction() as session:
        row = store.find_post(session, "https://metro.example.org/?p=9001")
        assert row.title.endswith("(updated)") and row.categories == ["Local"]
        assert row.published_at == datetime(2026, 11, 28, 16, 30, tzinfo=UTC)


def test_dateless_posts_take_first_seen_time_and_keep_it(db: Database) -> None:
    upsert(db, posts_of("rss091_nodates.xml"), now=NOW)
    upsert(db, posts_of("rss091_nodates.xml"), now=NOW + timedelta(hours=5))
    with db.transaction() as session:
        rows = store.list_posts(session)
    assert {r.published_at for r in rows} == {NOW}
    assert {r.first_seen_at for r in rows} == {NOW}


def test_a_feed_lands_whole_or_not_at_all(db: Database) -> None:
    posts = posts_of("rss2_media.xml")
    posts[2].title = None  # type: ignore[assignment]  # NOT NULL: the database refuses it
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as session:
        store.upsert_posts(session, posts, source="test", now=NOW)
    assert count_posts(db) == 0


def test_editor_choice_survives_repolls(db: Database) -> None:
    upsert(db, posts_of("wordpress_posts.json"))
    with db.transaction() as session:
        store.set_featured(session, "wp:https://www.tribune.example.com/5120", False)
    upsert(db, posts_of("wordpress_posts.json"))
    with db.transaction() as session:
        row = store.find_post(session, "wp:https://www.tribune.example.com/5120")
        assert row.sticky is True and row.editor_featured is False


def test_find_post_by_id_guid_or_link(db: Database) -> None:
    upsert(db, posts_of("rss2_media.xml"))
    with db.transaction() as session:
        row = store.find_post(session, "https://metro.example.org/2026/11/28/rain/")
        assert store.find_post(session, str(row.id)).id == row.id
        assert store.find_post(session, row.guid).id == row.id
        tram = store.find_post(
            session, "https://metro.example.org/2026/11/28/tram-line/?utm_source=rss&utm_medium=rss"
        )
        assert tram.title.startswith("City Council")
        with pytest.raises(PostNotFound, match="no post with id, guid or link 'nope'"):
            store.find_post(session, "nope")


def test_featured_by_all_three_routes_with_end_times(db: Database) -> None:
    upsert(db, posts_of("wordpress_posts.json"))  # 5120 sticky, 5119 in DON’T MISS
    upsert(db, posts_of("rss1.rdf"))
    with db.transaction() as session:
        titles = [p.title for p in store.featured_posts(session, CATS, NOW)]
    assert titles == ["Election Night: Results “Too Close to Call”", "Harbour Festival Returns"]
    with db.transaction() as session:
        store.set_featured(
            session, "https://science.example.com/comet", True, until=NOW + timedelta(hours=2)
        )
        store.set_featured(session, "wp:https://www.tribune.example.com/5119", False)
        titles = [p.title for p in store.featured_posts(session, CATS, NOW)]
        assert titles == [
            "Election Night: Results “Too Close to Call”",
            "Comet Visible to the Naked Eye",
        ]
        later = [p.title for p in store.featured_posts(session, CATS, NOW + timedelta(hours=3))]
        assert later == ["Election Night: Results “Too Close to Call”"]
        assert len(store.featured_posts(session, CATS, NOW, limit=1)) == 1
        with pytest.raises(InvalidInput):
            store.set_featured(session, "1", False, until=NOW)


def test_manual_posts(db: Database) -> None:
    with db.transaction() as session:
        post, created = store.add_post(
            session, title="Editor's note", url="https://e.com/note#x", featured=True
        )
        assert created and post.guid == "https://e.com/note" and post.source == "manual"
        again, created = store.add_post(session, title="Editor's note v2", url="https://e.com/note")
        assert not created and again.id == post.id and again.editor_featured is True


def test_feeds_crud(db: Database) -> None:
    with db.transaction() as session:
        _, created = feeds.add_feed(session, "https://e.com/feed")
        assert created
        _, created = feeds.add_feed(session, " https://e.com/feed ")
        assert not created
        assert [f.url for f in feeds.list_feeds(session)] == ["https://e.com/feed"]
        feeds.remove_feed(session, "https://e.com/feed")
        with pytest.raises(FeedNotFound):
            feeds.remove_feed(session, "https://e.com/feed")


def feed_row(db: Database, url: str) -> Feed:
    with db.transaction() as session:
        row = feeds.get_feed(session, url)
        assert row is not None
        return row


async def test_poll_is_conditional_and_idempotent(
    db: Database, cfg: Settings, server: FeedServer
) -> None:
    url = server.route(
        "/feed", body=RSS, etag='"a1"', last_modified="Sat, 28 Nov 2026 18:05:00 GMT"
    )
    first = await poll_feed(db, cfg, url)
    assert first.ok and (first.inserted, first.skipped) == (3, 2)
    row = feed_row(db, url)
    assert row.etag == '"a1"' and row.title == "Metro Herald – Latest" and row.last_ok_at

    second = await poll_feed(db, cfg, url)
    assert second.ok and second.not_modified and second.inserted == 0
    assert server.seen("/feed")[-1].headers["if-none-match"] == '"a1"'
    assert server.seen("/feed")[-1].headers["if-modified-since"] == "Sat, 28 Nov 2026 18:05:00 GMT"
    assert count_posts(db) == 3

    server.route("/feed", body=RSS.replace(b"Heavy Rain", b"Very Heavy Rain"), etag='"a2"')
    third = await poll_feed(db, cfg, url)
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 2)
    assert count_posts(db) == 3 and feed_row(db, url).etag == '"a2"'


async def test_failures_are_recorded_then_cleared(
    db: Database, cfg: Settings, server: FeedServer
) -> None:
    url = server.route("/feed", body=b"down", status=500, content_type="text/plain")
    result = await poll_feed(db, cfg, url)
    assert not result.ok and "500" in (result.error or "")
    row = feed_row(db, url)
    since = row.failing_since
    assert row.last_error and "500" in row.last_error and since is not None
    await poll_feed(db, cfg, url)
    assert feed_row(db, url).failing_since == since  # still failing since the first time
    server.route("/feed", body=RSS)
    assert (await poll_feed(db, cfg, url)).ok
    row = feed_row(db, url)
    assert row.last_error is None and row.failing_since is None and row.last_ok_at


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ({"body": (FEEDS / "page.html").read_bytes(), "content_type": "text/html"}, "HTML page"),
        ({"body": (FEEDS / "malformed.xml").read_bytes()}, "not well-formed"),
        ({"body": RSS[: len(RSS) - 60]}, "truncated"),
        ({"body": b"x" * 5000}, "larger than"),
        ({"body": RSS, "delay": 3.0}, "no complete answer"),
        ({"redirect_to": "/bad"}, "redirect loop"),
        ({"status": 404, "body": b"gone"}, "404"),
    ],
)
async def test_bad_feeds_import_nothing(
    db: Database,
    make_settings,
    server: FeedServer,
    route: dict,
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    cfg = make_settings(
        database_url=db.url, allow_private_feeds=True, feed_timeout=1.0, feed_max_bytes=4096
    )
    url = server.route("/bad", **route)
    result = await poll_feed(db, cfg, url)
    assert not result.ok and words in (result.error or "")
    assert "\n" not in (result.error or "")
    assert count_posts(db) == 0
    assert words in (feed_row(db, url).last_error or "")


async def test_poll_all_survives_bad_feeds(db: Database, make_settings, server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    good = server.route("/good", body=RSS)
    atom = server.route("/atom", body=(FEEDS / "atom_xhtml.xml").read_bytes())
    bad = server.route("/bad", status=500, body=b"")
    cfg = make_settings(database_url=db.url, allow_private_feeds=True, feeds=f"{atom}, {good}")
    with db.transaction() as session:
        feeds.add_feed(session, bad)
        feeds.add_feed(session, good)
    results = await poll_all(db, cfg)
    assert [r.url for r in results] == [bad, good, atom]
    assert [r.ok for r in results] == [False, True, True]
    assert count_posts(db) == 5


async def test_poll_all_refuses_private_feeds_by_default(
    db: Database, make_settings, server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    url = server.route("/feed", body=RSS)
    cfg = make_settings(database_url=db.url, feeds=url)
    [result] = await poll_all(db, cfg)
    assert not result.ok and "non-public address 127.0.0.1" in (result.error or "")
    assert server.seen("/feed") == []


def test_import_source_file_and_url(db: Database, cfg: Settings, server: FeedServer) -> None:
    result = import_source(db, cfg, str(FEEDS / "wordpress_posts.json"))
    assert (result.inserted, result.skipped) == (3, 1)
    server.route(
        "/wp-json/wp/v2/posts?_embed=1",
        body=(FEEDS / "wordpress_posts.json").read_bytes(),
        content_type="application/json",
    )
    # The posts endpoint without _embed would lack terms and media: it is added.
    result = import_source(db, cfg, server.url("/wp-json/wp/v2/posts"))
    assert (result.inserted, result.unchanged) == (0, 3)
    assert result.url == server.url("/wp-json/wp/v2/posts")
    with db.transaction() as session:
        assert feeds.list_feeds(session) == []  # a one-off import is not a subscription


async def test_oversized_validators_are_dropped_not_cut(
    db: Database, cfg: Settings, server: FeedServer
) -> None:
    url = server.route("/feed", body=RSS, etag='"' + "e" * 600 + '"')
    assert (await poll_feed(db, cfg, url)).ok
    assert feed_row(db, url).etag is None
