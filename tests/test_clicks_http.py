"""``/r/TOKEN`` and ``/o/TOKEN.gif`` over real HTTP (uvicorn on loopback), on both stores:
the redirect goes exactly where the mail's link went, a bad token gets the 404 page and
never a redirect, and clicks reach the counts (readers' and machines' apart) within seconds,
keeping per reader only what the tracking mode allows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from digest.clicks import fold
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.tracking import (
    MailKind,
    MailRef,
    aggregate_copy,
    link_token,
    reader_copy,
    tracked_url,
)
from digest.web.app import create_app
from tests.support.browser import bound_socket, serve_app
from tests.support.clicks import add_reader

MAIL = MailRef(MailKind.EDITION, 1)
STORY = "https://news.example/2026/12/02/story?id=7&utm_source=digest"
BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15"
)


class Site:
    """A running app on loopback, its settings and store, and an HTTP client to it."""

    def __init__(self, settings: Settings, db: Database, app: Any, url: str) -> None:
        self.settings, self.db, self.app, self.url = settings, db, app, url
        self.http = httpx.Client(base_url=url, headers={"user-agent": BROWSER}, timeout=10)

    def copy(self, mail: MailRef = MAIL) -> str:
        """A new aggregate copy's part of ``mail``, as the worker writes it."""
        return aggregate_copy(self.settings.secret, mail)

    def link(self, url: str = STORY, copy: str | None = None, mail: MailRef = MAIL) -> str:
        """The path of a tracked link to ``url`` in ``mail``'s copy ``copy``."""
        full = tracked_url(
            self.settings.base_url,
            self.settings.secret,
            mail,
            url,
            aggregate_copy(self.settings.secret, mail) if copy is None else copy,
        )
        return full.removeprefix(self.settings.base_url)

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self.db.engine.connect() as conn:
            query = sa.text(f"SELECT * FROM {table}")
            return [dict(r) for r in conn.execute(query).mappings()]

    def counts(self) -> dict[str, tuple[int, int]]:
        """url -> (human, machine) clicks, as folded so far."""
        return {r["url"]: (r["human"], r["machine"]) for r in self.rows("link_clicks")}

    def fold_all(self, events: int) -> None:
        """Once ``events`` events are stored, count them as a fold well after their bursts
        would (what `digest stats` does a few seconds later)."""
        wait(lambda: len(self.rows("click_events")) + self._folded() >= events, "events stored")
        fold(self.db, self.settings, utcnow() + timedelta(seconds=60))

    def _folded(self) -> int:
        return sum(h + m for h, m in self.counts().values())


def wait(check: Callable[[], bool], what: str, limit: float = 20.0) -> float:
    """Poll ``check`` until true; the seconds it took. Fails after ``limit``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > limit:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def site(db: Database, make_settings) -> Iterator[Callable[..., Site]]:  # type: ignore[no-untyped-def]
    """Start the app with the given settings; stopped after the test."""
    started: list[tuple[Any, Any]] = []

    @contextmanager
    def run(**overrides: Any) -> Iterator[Site]:
        sock = bound_socket()
        port = sock.getsockname()[1]
        settings = make_settings(
            database_url=db.url, base_url=f"http://127.0.0.1:{port}", **overrides
        )
        app = create_app(settings, db)
        with serve_app(app, sock) as url:
            yield Site(settings, db, app, url)
        app.state.clicks.close()

    def make(**overrides: Any) -> Site:
        context = run(**overrides)
        started.append((context, None))
        return context.__enter__()

    yield make
    for context, _ in reversed(started):
        context.__exit__(None, None, None)


def test_a_valid_token_redirects_to_exactly_its_url(site) -> None:  # type: ignore[no-untyped-def]
    s = site()
    odd = "https://news.example/a%20b/ü?q=1&r=é#frag"
    for url, expected in [
        (STORY, STORY),
        ("http://news.example/plain", "http://news.example/plain"),
        (odd, "https://news.example/a%20b/%C3%BC?q=1&r=%C3%A9#frag"),
    ]:
        answer = s.http.get(s.link(url))
        assert answer.status_code == 302
        assert answer.headers["location"] == expected
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["referrer-policy"] == "no-referrer"


def _bad_tokens(s: Site) -> list[str]:
    token = s.link().removeprefix("/r/")
    link_part = token.rsplit(".", 1)[0]
    tampered = ("B" if link_part[3] != "B" else "C").join((link_part[:3], link_part[4:]))
    other = link_token(b"another key entirely, 32 bytes!!", MAIL, STORY)
    return [
        tampered + s.copy(),
        token[: len(token) // 2],  # truncated
        link_part[:-1],  # the MAC cut short
        "not-a-token",
        "....",
        "",
        token + "/",  # a valid token and a slash: no redirect to the path without it
        other + s.copy(),  # signed with another key
        link_token(s.settings.secret, MAIL, "javascript:alert(1)") + s.copy(),
        link_token(s.settings.secret, MAIL, "//evil.example/") + s.copy(),
        link_token(s.settings.secret, MAIL, "") + s.copy(),  # an open's token
    ]


def test_a_bad_token_gets_the_404_page_with_a_link_to_the_site(site) -> None:  # type: ignore[no-untyped-def]
    s = site(site_name="The Daily Brief")
    for token in _bad_tokens(s):
        for method in ("GET", "HEAD"):
            answer = s.http.request(method, f"/r/{token}", headers={"accept": "text/html"})
            assert answer.status_code == 404, token
            assert "location" not in answer.headers
            assert answer.headers["content-type"].startswith("text/html")
            if method == "GET":
                assert f'<a href="{s.settings.base_url}">Go to The Daily Brief</a>' in answer.text
    s.app.state.clicks.close()
    assert s.rows("click_events") == []


def test_no_r_path_gets_a_server_error(site) -> None:  # type: ignore[no-untyped-def]
    s = site()
    good = s.link().removeprefix("/r/")

    @hsettings(max_examples=150, deadline=None)
    @given(
        st.one_of(
            st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300),
            st.sampled_from([".", "..", "./", "%2e", "/", "//x", "?q", "#f"]),
            st.tuples(st.integers(0, len(good)), st.text(max_size=5)).map(
                lambda cut: good[: cut[0]] + cut[1] + good[cut[0] :]
            ),
        )
    )
    def check(path: str) -> None:
        try:
            answer = s.http.get("/r/" + path)
        except httpx.InvalidURL:
            return  # the client refuses to send it at all
        assert answer.status_code < 500
        assert answer.status_code == 302 or "location" not in answer.headers

    check()


def test_a_click_shows_in_the_counts_within_10_seconds(site) -> None:  # type: ignore[no-untyped-def]
    s = site()
    assert s.http.get(s.link()).status_code == 302
    took = wait(lambda: s.counts().get(STORY) == (1, 0), "the click in link_clicks", limit=10)
    assert took < 10
    copies = s.rows("mail_copies")
    assert len(copies) == 1 and copies[0]["human_click_at"] is not None
    assert s.rows("click_events") == []  # folded and deleted


def test_head_requests_and_scanner_agents_are_machine_clicks(site) -> None:  # type: ignore[no-untyped-def]
    s = site()
    s.http.head(s.link("https://news.example/head"))
    s.http.get(s.link("https://news.example/scan"), headers={"user-agent": "python-requests/2.32"})
    s.http.get(s.link("https://news.example/empty"), headers={"user-agent": ""})
    s.http.get(s.link("https://news.example/read"))
    s.fold_all(4)
    assert s.counts() == {
        "https://news.example/head": (0, 1),
        "https://news.example/scan": (0, 1),
        "https://news.example/empty": (0, 1),
        "https://news.example/read": (1, 0),
    }


def test_a_copy_clicking_every_link_at_once_is_a_machine(site) -> None:  # type: ignore[no-untyped-def]
    s = site()
    scanned, reader = (
        s.copy(),
        s.copy(),
    )
    stories = [f"https://news.example/{i}" for i in range(4)]
    for url in stories:  # a gateway opening every link of one copy, with a browser's agent
        assert s.http.get(s.link(url, scanned)).status_code == 302
    assert s.http.get(s.link(stories[0], reader)).status_code == 302  # a reader, meanwhile
    s.fold_all(5)
    assert s.counts() == {stories[0]: (1, 1), **{u: (0, 1) for u in stories[1:]}}
    copies = {r["copy_tag"]: r for r in s.rows("mail_copies")}
    assert copies[scanned[1:]]["human_click_at"] is None
    assert copies[scanned[1:]]["machine_click_at"] is not None
    assert copies[reader[1:]]["human_click_at"] is not None  # one unique human click


def test_a_burst_through_two_web_processes_is_seen_whole(site) -> None:  # type: ignore[no-untyped-def]
    """Two apps on one store, each with its own recorder folding every second: a gateway's
    requests spread over both are still one burst, and each click is counted once."""
    one, two = site(), site()
    scanned = one.copy()
    stories = [f"https://news.example/{i}" for i in range(4)]
    for i, url in enumerate(stories):
        server = (one, two)[i % 2]
        assert server.http.get(server.link(url, scanned)).status_code == 302
    assert two.http.get(two.link(stories[0])).status_code == 302  # a reader
    wait(lambda: sum(h + m for h, m in one.counts().values()) == 5, "the clicks counted")
    assert one.counts() == {stories[0]: (1, 1), **{u: (0, 1) for u in stories[1:]}}


def test_aggregate_tracking_keeps_nothing_about_the_reader(site, db: Database) -> None:  # type: ignore[no-untyped-def]
    s = site(tracking="aggregate")
    sid = add_reader(db)
    # A per-reader copy (mail sent before tracking became aggregate) and an aggregate one.
    s.http.get(s.link(copy=reader_copy(s.settings.secret, MAIL, sid)))
    s.http.get(s.link())
    wait(lambda: len(s.rows("click_events")) == 2, "the events stored")
    assert all(e["subscriber_id"] is None for e in s.rows("click_events"))
    assert _tag(s.settings, sid) not in {e["copy_tag"] for e in s.rows("click_events")}
    s.fold_all(2)
    assert s.counts() == {STORY: (2, 0)}
    assert s.rows("reader_clicks") == []
    assert [r["last_click_at"] for r in s.rows("subscriptions")] == [None]
    assert all(len(r["copy_tag"]) == 16 for r in s.rows("mail_copies"))  # random tags only


def test_per_reader_tracking_keeps_the_readers_click(site, db: Database) -> None:  # type: ignore[no-untyped-def]
    s = site(tracking="per-reader")
    sid = add_reader(db)
    copy = reader_copy(s.settings.secret, MAIL, sid)
    assert s.http.get(s.link(copy=copy)).status_code == 302
    forged = copy[:-2] + ("AA" if copy[-2:] != "AA" else "BB")
    assert s.http.get(s.link(copy=forged)).status_code == 302  # redirected, never counted
    s.fold_all(1)
    assert s.counts() == {STORY: (1, 0)}
    clicks = s.rows("reader_clicks")
    assert [(c["subscriber_id"], c["mail"], c["url"], bool(c["machine"])) for c in clicks] == [
        (sid, str(MAIL), STORY, False)
    ]
    [subscription] = s.rows("subscriptions")
    assert subscription["last_click_at"] is not None
    assert [r["copy_tag"] for r in s.rows("mail_copies")] == [_tag(s.settings, sid)]


def test_uncounted_links_redirect_but_record_nothing(site) -> None:  # type: ignore[no-untyped-def]
    s = site()
    for copy in (".t", ".n", ".garbled"):  # a test copy, an opted-out reader, a bad tag
        assert s.http.get(s.link(copy=copy)).status_code == 302
    s.app.state.clicks.close()  # stores whatever it holds
    assert s.rows("click_events") == [] and s.counts() == {}


def test_tracking_off_records_nothing(site) -> None:  # type: ignore[no-untyped-def]
    s = site(tracking="off", track_opens=True)
    assert s.http.get(s.link()).headers["location"] == STORY  # an old mail's link still works
    open_path = f"/o/{link_token(s.settings.secret, MAIL, '')}{s.copy()}.gif"
    assert s.http.get(open_path).status_code == 200
    s.app.state.clicks.close()
    assert s.rows("click_events") == [] and s.counts() == {}


def test_the_pixel_always_answers_and_counts_proxy_opens_apart(site) -> None:  # type: ignore[no-untyped-def]
    s = site(track_opens=True)
    token = link_token(s.settings.secret, MAIL, "")
    own, apple = s.copy(), s.copy()
    for path in ("/o/garbage.gif", f"/o/{token}{own}.gif", f"/o/{token}{apple}.gif"):
        agent = "Mozilla/5.0" if apple in path else BROWSER
        answer = s.http.get(path, headers={"user-agent": agent})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/gif"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.content.startswith(b"GIF89a")
    s.fold_all(2)
    copies = {r["copy_tag"]: r for r in s.rows("mail_copies")}
    assert copies[own[1:]]["opened_at"] is not None and copies[own[1:]]["proxy_open_at"] is None
    assert copies[apple[1:]]["proxy_open_at"] is not None and copies[apple[1:]]["opened_at"] is None
    assert s.counts() == {}  # opens are no link's clicks


def _tag(settings: Settings, reader: int) -> str:
    """The copy tag a reader's clicks on MAIL are stored under: their id in base 36."""
    return reader_copy(settings.secret, MAIL, reader)[1:].split("-")[0]
