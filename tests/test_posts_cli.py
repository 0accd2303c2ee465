"""``digest posts`` and ``digest feeds`` via the real entry point: output, errors, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.db import Database
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
        (("feeds", "add", "gopher://e.com/"), 65, "only http:// and https://"),
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
    bad = server.route("/bad", body=(FEEDS / "page.html").read_bytes(), content_type="text/html")
    configured = server.route(
        "/wp", body=(FEEDS / "wordpress_posts.json").read_bytes(), content_type="application/json"
    )
    monkeypatch.setenv("DIGEST_FEEDS", configured)
    assert run(capsys, "feeds", "add", good).out.startswith("feed added")
    assert run(capsys, "feeds", "add", good).out.startswith("feed already present")
    run(capsys, "feeds", "add", bad)
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
    one_line_error(run(capsys, "feeds", "add", "http://192.168.0.1/feed"), 65, "non-public")
