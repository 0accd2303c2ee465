"""``digest posts`` and ``digest feeds`` via the real entry point: output, errors, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.db import Database
from digest.errors import FeedError
from tests.support.cli import Result, run
from tests.support.feed_server import FeedServer

FEEDS = Path(__file__).parent / "feeds"
RSS = (FEEDS / "rss2_media.xml").read_bytes()


@pytest.fixture
def env(cli_env: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("DIGEST_ALLOW_PRIVATE_FEEDS", "true")
    monkeypatch.setenv("DIGEST_FEED_TIMEOUT", "1")
    return cli_env


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer().start()
    yield srv
    srv.stop()


def one_line_error(r: Result, code: int, words: str) -> None:
    assert r.code == code, r
    assert words in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert r.err.startswith("error: ")


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return json.loads(run(capsys, "posts", "list", "--json").out)


def test_import_file_list_and_reimport(env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "posts", "import", str(FEEDS / "rss2_media.xml"))
    assert r.code == 0
    assert r.out.strip().endswith("3 new, 0 updated, 0 unchanged, 2 skipped (no title or link)")
    assert (
        run(capsys, "posts", "import", str(FEEDS / "rss2_media.xml"))
        .out.strip()
        .endswith("0 new, 0 updated, 3 unchanged, 2 skipped (no title or link)")
    )
    posts = listed(capsys)
    assert posts[0]["title"] == "City Council Approves New Tram Line"
    assert posts[0]["featured"] is True  # in “Don’t Miss”
    text = run(capsys, "posts", "list").out
    assert "\t*\t" in text and "Heavy Rain" in text


def test_import_url(env: Database, capsys: pytest.CaptureFixture[str], server: FeedServer) -> None:
    url = server.route(
        "/feed.atom",
        body=(FEEDS / "atom_xhtml.xml").read_bytes(),
        content_type="application/atom+xml",
    )
    r = run(capsys, "posts", "import", url)
    assert r.code == 0 and "2 new" in r.out


@pytest.mark.parametrize(
    ("route", "code", "words"),
    [
        ({"status": 404, "body": b"no"}, 69, "the server answered 404 Not Found"),
        ({"status": 500, "body": b"no"}, 69, "the server answered 500"),
        (
            {"body": (FEEDS / "page.html").read_bytes(), "content_type": "text/html"},
            69,
            "HTML page",
        ),
        ({"body": (FEEDS / "malformed.xml").read_bytes()}, 69, "not well-formed XML"),
        ({"body": RSS[:-80]}, 69, "truncated"),
        ({"body": RSS, "delay": 2.5}, 69, "no complete answer within 1s"),
        ({"redirect_to": "/feed"}, 69, "redirect loop"),
    ],
)
def test_import_errors_are_one_line(
    env: Database,
    capsys: pytest.CaptureFixture[str],
    server: FeedServer,
    route: dict,
    code: int,
    words: str,
) -> None:
    url = server.route("/feed", **route)
    one_line_error(run(capsys, "posts", "import", url), code, words)
    assert listed(capsys) == []


def test_import_refuses_private_addresses_by_default(
    env: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    server: FeedServer,
) -> None:
    monkeypatch.delenv("DIGEST_ALLOW_PRIVATE_FEEDS")
    url = server.route("/feed", body=RSS)
    one_line_error(run(capsys, "posts", "import", url), 69, "non-public address 127.0.0.1")
    one_line_error(run(capsys, "posts", "import", "http://10.0.0.1/feed"), 69, "10.0.0.1")
    assert server.seen("/feed") == []


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("posts", "import", "missing.xml"), 66, "missing.xml: no such file"),
        (("posts", "import", "ftp://e.com/feed"), 69, "only http(s) URLs and local files"),
        (("posts", "feature", "42"), 66, "no post with id, guid or link '42'"),
        (("posts", "unfeature", "https://nowhere.example/"), 66, "no post"),
        (("posts", "add", "--title", "T", "--url", "javascript:alert(1)"), 65, "http(s) URL"),
        (("posts", "add", "--title", "<b></b>", "--url", "https://e.com/"), 65, "--title"),
        # The same refusal as posts import's, with the same exit code.
        (("feeds", "add", "gopher://e.com/"), FeedError.exit_code, "only http:// and https://"),
        (("feeds", "remove", "https://e.com/feed"), 66, "no feed with URL"),
    ],
)
def test_bad_input(
    env: Database, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], code: int, words: str
) -> None:
    one_line_error(run(capsys, *args), code, words)


def test_add_feature_unfeature(env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(
        capsys,
        "posts",
        "add",
        "--title",
        "Editor's pick",
        "--url",
        "https://e.com/pick",
        "--summary",
        "<b>Read</b> this",
        "--featured",
    )
    assert r.code == 0 and r.out.startswith("post 1 added")
    [post] = listed(capsys)
    assert post["featured"] and post["summary"] == "Read this" and post["source"] == "manual"
    assert run(capsys, "posts", "unfeature", "https://e.com/pick").code == 0
    assert listed(capsys)[0]["featured"] is False
    r = run(capsys, "posts", "feature", "1", "--until", "2h")
    assert r.code == 0 and "featured until" in r.out
    assert listed(capsys)[0]["featured_until"] is not None
    r = run(capsys, "posts", "feature", "1", "--until", "2099-01-01T08:00")
    assert r.code == 0 and "2099-01-01T08:00+00:00" in r.out
    one_line_error(run(capsys, "posts", "feature", "1", "--until", "2001-01-01"), 65, "in the past")
    one_line_error(run(capsys, "posts", "feature", "1", "--until", "soon"), 65, "--until must be")
    run(capsys, "posts", "feature", "1", "--until", "1m")
    assert [p["id"] for p in json.loads(run(capsys, "posts", "list", "--featured", "--json").out)]


def test_feeds_add_list_poll_remove(
    env: Database,
    capsys: pytest.CaptureFixture[str],
    server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = server.route("/good", body=RSS, etag='"e1"')
    bad = server.route("/bad", body=RSS)  # a feed when added, that breaks later
    configured = server.route(
        "/wp", body=(FEEDS / "wordpress_posts.json").read_bytes(), content_type="application/json"
    )
    monkeypatch.setenv("DIGEST_FEEDS", configured)
    # Three feeds polled at once: a second is too short on a busy machine.
    monkeypatch.setenv("DIGEST_FEED_TIMEOUT", "15")
    assert run(capsys, "feeds", "add", good).out.startswith("feed added")
    assert run(capsys, "feeds", "add", good).out.startswith("feed already present")
    assert run(capsys, "feeds", "add", bad).code == 0
    server.route("/bad", body=(FEEDS / "page.html").read_bytes(), content_type="text/html")
    r = run(capsys, "feeds", "poll")
    assert r.code == 69
    assert f"{good}: 3 new" in r.out and f"{configured}: 3 new" in r.out
    assert f"failed: {bad}: this is an HTML page, not a feed" in r.err
    assert r.err.strip().splitlines()[-1] == "error: 1 of 3 feeds failed"
    feeds = json.loads(run(capsys, "feeds", "list", "--json").out)
    assert [(f["url"], f["from"], bool(f["last_error"])) for f in feeds] == [
        (good, "store", False),
        (bad, "store", True),
        (configured, "settings", False),
    ]
    assert "failing since" in run(capsys, "feeds", "list").out
    one_line_error(run(capsys, "feeds", "remove", configured), 65, "comes from DIGEST_FEEDS")
    assert run(capsys, "feeds", "remove", bad).code == 0
    r = run(capsys, "feeds", "poll")
    assert r.code == 0 and f"{good}: not modified" in r.out
    assert server.seen("/good")[-1].headers["if-none-match"] == '"e1"'


def test_feeds_add_refuses_private_literal_by_default(
    env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_ALLOW_PRIVATE_FEEDS")
    one_line_error(
        run(capsys, "feeds", "add", "http://192.168.0.1/feed"), FeedError.exit_code, "non-public"
    )


def stored(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [f["url"] for f in json.loads(run(capsys, "feeds", "list", "--json").out)]


def page(head: str) -> bytes:
    body = "<body><h1>Metro Herald</h1></body>"
    return f"<!DOCTYPE html><html><head>{head}</head>{body}</html>".encode()


def test_feeds_add_fetches_once_and_stores_a_feed_as_given(
    env: Database, capsys: pytest.CaptureFixture[str], server: FeedServer
) -> None:
    url = server.route("/rss.xml", body=RSS)
    r = run(capsys, "feeds", "add", url)
    assert r.code == 0 and r.out == f"feed added: {url} (digest feeds poll fetches it now)\n"
    assert len(server.seen("/rss.xml")) == 1 and stored(capsys) == [url]


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ({"status": 404, "body": b"no"}, "the server answered 404 Not Found"),
        ({"body": (FEEDS / "malformed.xml").read_bytes()}, "not well-formed XML"),
        ({"body": b"hello", "content_type": "text/plain"}, "not an RSS or Atom feed"),
        ({"body": b'{"code": 1}', "content_type": "application/json"}, "not a list of WordPress"),
    ],
)
def test_feeds_add_refuses_what_is_not_a_feed(
    env: Database,
    capsys: pytest.CaptureFixture[str],
    server: FeedServer,
    route: dict,
    words: str,
) -> None:
    url = server.route("/feed", **route)
    one_line_error(run(capsys, "feeds", "add", url), FeedError.exit_code, words)
    assert stored(capsys) == []


def test_feeds_add_refuses_a_page_that_leads_to_no_feed(
    env: Database, capsys: pytest.CaptureFixture[str], server: FeedServer
) -> None:
    # A stylesheet, a JSON feed digest does not read, and a link crafted to reach a terminal.
    head = (
        '<link rel="stylesheet" type="text/css" href="/style.css">'
        '<link rel="alternate" type="application/feed+json" href="/feed.json">'
        '<link rel="alternate" type="application/rss+xml" href="/x\x1b]8;;http://evil/\x07">'
    )
    url = server.route("/", body=page(head), content_type="text/html; charset=utf-8")
    r = run(capsys, "feeds", "add", url)
    one_line_error(r, FeedError.exit_code, f"{url}: this is a web page, not a feed")
    assert f"{server.url('/feed/')}: the server answered 404 Not Found" in r.err
    assert "/wp-json/wp/v2/posts?_embed=1: the server answered 404" in r.err
    assert "\x1b" not in r.err and "\x07" not in r.err
    assert stored(capsys) == []
    assert [s.path for s in server.requests] == ["/", "/feed/", "/wp-json/wp/v2/posts?_embed=1"]


def test_feeds_add_discovers_the_feed_a_page_names(
    env: Database, capsys: pytest.CaptureFixture[str], server: FeedServer
) -> None:
    head = (
        '<link rel="icon" href="/favicon.ico">'
        '<link rel="alternate" type="application/rss+xml" href="/news/broken.xml">'
        '<link REL="Alternate feed" type="application/atom+xml; charset=utf-8" href="atom.xml">'
        '<link rel="alternate" type="application/rss+xml" href="/comments/feed/">'
    )
    url = server.route("/news/", body=page(head), content_type="text/html")
    atom = server.route(
        "/news/atom.xml",
        body=(FEEDS / "atom_xhtml.xml").read_bytes(),
        content_type="application/atom+xml",
    )
    server.route("/comments/feed/", body=RSS)
    r = run(capsys, "feeds", "add", url)
    assert r.code == 0, r
    assert r.out.splitlines() == [
        f'{url} is a web page; its feed is {atom} (named by the page\'s <link rel="alternate">)',
        f"feed added: {atom} (digest feeds poll fetches it now)",
    ]
    assert stored(capsys) == [atom]
    assert server.seen("/comments/feed/") == []  # the first that works is the one taken
    r = run(capsys, "feeds", "poll")
    assert r.code == 0 and f"{atom}: 2 new" in r.out


@pytest.mark.parametrize("where", ["/feed/", "/wp-json/wp/v2/posts"])
def test_feeds_add_finds_a_wordpress_sites_feed(
    env: Database, capsys: pytest.CaptureFixture[str], server: FeedServer, where: str
) -> None:
    url = server.route("/", body=page("<title>A WordPress site</title>"), content_type="text/html")
    if where == "/feed/":
        server.route("/feed/", body=RSS)
    else:
        server.route(
            "/wp-json/wp/v2/posts?_embed=1",
            body=(FEEDS / "wordpress_posts.json").read_bytes(),
            content_type="application/json",
        )
    r = run(capsys, "feeds", "add", url)
    assert r.code == 0, r
    assert r.out.splitlines() == [
        f"{url} is a web page; its feed is {server.url(where)} (WordPress's usual place for it)",
        f"feed added: {server.url(where)} (digest feeds poll fetches it now)",
    ]
    assert stored(capsys) == [server.url(where)]
    assert "3 new" in run(capsys, "feeds", "poll").out
