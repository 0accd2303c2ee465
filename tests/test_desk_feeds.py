"""The desk's Feeds section on SQLite and PostgreSQL, against a real HTTP server on loopback:
each feed's health, adding one through a site's page (discovery), polling it now, removing it,
all audited; errors beside the field; a viewer may look but not change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import func, select

from digest import audit
from digest.config import Settings
from digest.db import Database
from digest.models import Feed, Post
from digest.posts import feeds
from tests.support.desk import desk_client
from tests.support.feed_server import FeedServer
from tests.support.web import make_app

FEEDS = Path(__file__).parent / "feeds"
RSS = (FEEDS / "rss2_media.xml").read_bytes()
PAGE = (FEEDS / "page.html").read_bytes()
SINCE = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def cfg(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    # Loopback is a private address: the tests' feed server needs the allowance.
    return make_settings(database_url=db.url, allow_private_feeds=True, feed_timeout=2.0)


def stored_feeds(db: Database) -> list[str]:
    with db.transaction() as session:
        return [f.url for f in feeds.list_feeds(session)]


def post_count(db: Database) -> int:
    with db.transaction() as session:
        return int(session.exec(select(func.count()).select_from(Post)).one())


def actions(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as session:
        found = reversed(audit.recent(session))
        return [(e.action, e.target) for e in found if e.action.startswith("feed.")]


async def test_feeds_page_shows_a_failing_feeds_error(db: Database, cfg: Settings) -> None:
    with db.transaction() as session:
        feeds.record_success(session, "https://ok.example.org/feed/", now=SINCE, title="Ok News")
        feeds.record_failure(
            session, "https://down.example.org/feed/", now=SINCE, error="the server answered 503"
        )
    http, _ = await desk_client(make_app(cfg, db), db, "viewer")
    async with aclosing(http):
        page = await http.get("/desk/feeds")
    assert page.status_code == 200
    html = page.text
    assert "Ok News" in html and "https://ok.example.org/feed/" in html
    down = html.split("https://down.example.org/feed/")[1]
    assert "failing" in down and "since 2026-11-30 06:00" in down
    assert "the server answered 503" in down
    assert "Poll now" not in html and "Add feed" not in html  # a viewer sees no actions


async def test_add_through_a_page_then_poll_then_remove(
    db: Database, cfg: Settings, server: FeedServer
) -> None:
    page = server.route("/", body=PAGE, content_type="text/html; charset=utf-8")
    feed = server.route("/feed/", body=RSS)
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        added = await http.post("/desk/feeds/add", data={"csrf_token": csrf, "url": page})
        assert added.status_code == 303
        listed = await http.get(added.headers["location"])
        assert "The feed is added" in listed.text and feed in listed.text
        assert stored_feeds(db) == [feed]  # the page led to its feed

        again = await http.post("/desk/feeds/add", data={"csrf_token": csrf, "url": feed})
        assert again.headers["location"].endswith("done=present")

        polled = await http.post("/desk/feeds/poll", data={"csrf_token": csrf, "url": feed})
        assert polled.status_code == 303
        shown = await http.get(polled.headers["location"])
        assert "Polled: 3 new, 0 updated, 0 unchanged" in shown.text
        assert post_count(db) == 3
        assert "Metro Herald" in shown.text and "badge ok" in shown.text

        unconfirmed = await http.post("/desk/feeds/remove", data={"csrf_token": csrf, "url": feed})
        assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
        assert stored_feeds(db) == [feed]
        removed = await http.post(
            "/desk/feeds/remove", data={"csrf_token": csrf, "url": feed, "confirm": "yes"}
        )
        assert removed.status_code == 303
    assert stored_feeds(db) == []
    assert post_count(db) == 3  # its posts stay
    assert actions(db)[-3:] == [("feed.add", feed), ("feed.poll", feed), ("feed.remove", feed)]
    with db.transaction() as session:
        [poll_entry] = audit.recent(session, action="feed.poll")
    assert poll_entry.before["last_ok_at"] is None and poll_entry.after["inserted"] == 3
    assert poll_entry.after["last_ok_at"] is not None


async def test_poll_of_a_broken_feed_shows_its_error(
    db: Database, cfg: Settings, server: FeedServer
) -> None:
    feed = server.route("/gone.xml", body=b"gone", status=410, content_type="text/plain")
    with db.transaction() as session:
        feeds.add_feed(session, feed)
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        polled = await http.post("/desk/feeds/poll", data={"csrf_token": csrf, "url": feed})
        shown = await http.get(polled.headers["location"])
    assert "The poll failed" in shown.text and "410" in shown.text
    with db.transaction() as session:
        row = session.exec(select(Feed)).one()
    assert row.failing_since is not None and "410" in (row.last_error or "")


@pytest.mark.parametrize(
    "url, says",
    [
        ("", "Give the feed"),
        ("ftp://example.org/feed", "only http:// and https://"),
        ("not a url at all", ""),
        ("/missing.xml", "404"),
        ("/page-without-feed", "leads to no feed"),
    ],
)
async def test_add_refusals_beside_the_field(
    db: Database, cfg: Settings, server: FeedServer, url: str, says: str
) -> None:
    server.route(
        "/page-without-feed", body=b"<html><body>hi</body></html>", content_type="text/html"
    )
    typed = server.url(url) if url.startswith("/") else url
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        answer = await http.post("/desk/feeds/add", data={"csrf_token": csrf, "url": typed})
    assert answer.status_code == 422
    assert 'id="url-error"' in answer.text and says in answer.text
    assert f'value="{typed}"' in answer.text
    assert stored_feeds(db) == [] and actions(db) == []


async def test_unknown_feed_is_a_404_and_viewer_is_refused(
    db: Database, cfg: Settings, server: FeedServer
) -> None:
    feed = server.route("/feed/", body=RSS)
    with db.transaction() as session:
        feeds.add_feed(session, feed)
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        missing = await http.post(
            "/desk/feeds/poll", data={"csrf_token": csrf, "url": "https://nowhere.example/"}
        )
    assert missing.status_code == 404
    viewer, vcsrf = await desk_client(make_app(cfg, db), db, "viewer")
    async with aclosing(viewer):
        for action, data in (
            ("add", {"url": feed}),
            ("poll", {"url": feed}),
            ("remove", {"url": feed, "confirm": "yes"}),
        ):
            answer = await viewer.post(f"/desk/feeds/{action}", data={"csrf_token": vcsrf, **data})
            assert answer.status_code == 403, action
    assert stored_feeds(db) == [feed] and post_count(db) == 0 and server.seen("/feed/") == []


async def test_a_feed_from_the_settings_is_not_removed_here(
    make_settings, db: Database, server: FeedServer
) -> None:
    feed = server.route("/feed/", body=RSS)
    cfg = make_settings(database_url=db.url, allow_private_feeds=True, feeds=feed)
    http, csrf = await desk_client(make_app(cfg, db), db, "editor")
    async with aclosing(http):
        page = await http.get("/desk/feeds")
        assert feed in page.text and "(DIGEST_FEEDS)" in page.text
        polled = await http.post("/desk/feeds/poll", data={"csrf_token": csrf, "url": feed})
        assert "new=3" in polled.headers["location"]
        refused = await http.post(
            "/desk/feeds/remove", data={"csrf_token": csrf, "url": feed, "confirm": "yes"}
        )
    assert refused.status_code == 422 and "remove it there" in refused.text
    assert stored_feeds(db) == [feed]  # the poll stored its health; the remove did nothing
