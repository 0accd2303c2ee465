"""Stored text reaches a terminal as printable lines: nothing from a feed, a form or a server's
reply can colour the screen, retitle the window, hide a link (OSC 8) or reorder what is shown."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import subprocess
import sys

from sqlmodel import select

from digest.db import Database
from digest.models import Delivery, Feed, Post, Subscription
from tests.support.cli import run
from tests.test_posts_cli import env, server  # noqa: F401  (a store and a feed server)

# An OSC 8 link to a stranger's site around "x", a colour (CSI), an 8-bit CSI, a window title
# (OSC 0) and a right-to-left override.
EVIL = (
    "A\x1b]8;;http://evil.example/\x07x\x1b]8;;\x07 \x1b[31mred\x1b[0m "
    "\x9b2J\x9b31mcsi \x1b]0;owned\x1b\\ok \u202eevil\u202c!"
)
CLEAN = "Ax red csi ok evil!"
# A feed parser reads 8-bit controls as Windows-1252 (U+009B as "›"), so the feed sends 7-bit ones.
FROM_FEED = EVIL.replace("\x9b2J\x9b31m", "\x1b[2J")
_ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

RSS = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>https://news.example.com/</link>
<item><title>{FROM_FEED}</title><link>https://news.example.com/1</link>
<guid>https://news.example.com/1</guid><pubDate>Tue, 01 Dec 2026 06:00:00 +0000</pubDate>
<category>World</category></item></channel></rss>"""


def _inert(text: str) -> None:
    assert not _ACTIVE.search(text), repr(text)


def _printable(text: str) -> None:
    _inert(text)
    assert "evil.example" not in text and "owned" not in text


def test_a_feed_title_with_escapes_is_listed_clean(env: Database, server, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    url = server.route("/feed", body=RSS.encode("utf-8"))
    assert run(capsys, "posts", "import", url).code == 0
    listed = run(capsys, "posts", "list")
    assert listed.code == 0
    _printable(listed.out)
    assert CLEAN in listed.out
    # --json keeps the stored title for programs, written so that a terminal shows it inert
    as_json = run(capsys, "posts", "list", "--json")
    _inert(as_json.out)
    assert json.loads(as_json.out)[0]["title"].startswith("A\x1b]8;;")


def test_subscribers_feeds_and_status_print_stored_text_clean(env: Database, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    with env.transaction() as s:
        ann = s.exec(select(Subscription)).one()
        ann.consent_user_agent = EVIL
        ann.topics = [EVIL]
        s.add(Post(guid="g", title=EVIL, link="https://news.example.com/2?" + EVIL))
        s.add(
            Feed(url="https://news.example.com/feed", last_error=EVIL, failing_since=ann.created_at)
        )
        s.add(
            Delivery(
                to_email="ann@example.com",
                status="failed",
                last_reply="550 " + EVIL,
                message_id="<x@example.com>",
            )
        )
    for args in (
        ("subscribers", "list"),
        ("subscribers", "show", "ann@example.com"),
        ("feeds", "list"),
        ("status",),
        ("posts", "list"),
    ):
        result = run(capsys, *args)
        assert result.code == 0, (args, result)
        _printable(result.out + result.err)
        assert CLEAN in result.out, (args, result.out)
    shown = run(capsys, "subscribers", "show", "ann@example.com", "--json")
    _inert(shown.out)
    assert json.loads(shown.out)["consent_user_agent"] == EVIL


def test_a_preview_on_a_terminal_shows_feed_text_inert(env: Database) -> None:  # noqa: F811
    """``digest preview --format text`` to a terminal (a real pty) prints the digest with every
    line through the same filter; the title's words stay, its escapes go."""
    with env.transaction() as s:
        s.add(Post(guid="g", title=EVIL, link="https://news.example.com/2", categories=["World"]))
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from digest.cli import main; main()",
            "preview",
            "--format",
            "text",
        ],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    os.close(secondary)
    chunks = []
    with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
        while chunk := os.read(primary, 65536):
            chunks.append(chunk)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(primary)
    out = b"".join(chunks).decode("utf-8").replace("\r", "")
    _printable(out)
    assert " ".join(out.split()).count(CLEAN) == 1  # wrapped as the text part wraps it
    assert "https://news.example.com/2" in out


def test_a_dry_run_lists_feed_titles_clean(env: Database, capsys) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """``digest send --dry-run`` names the posts each group would get: a feed's title reaches
    the terminal through the same filter as ``posts list``."""
    assert run(capsys, "subscribers", "add", "ann@example.com", "--confirmed").code == 0
    with env.transaction() as s:
        s.add(Post(guid="g", title=EVIL, link="https://news.example.com/2", categories=["World"]))
    result = run(capsys, "send", "--dry-run")
    assert result.code == 0, result
    _printable(result.out + result.err)
    assert f"Latest:     {CLEAN}" in result.out
