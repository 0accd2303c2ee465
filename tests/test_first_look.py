"""Small things a new operator or reader trips over on a first look: counts in ``status``,
topics, the archive's titles, the weekly edition's date, the default site name and the signup
copy."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from digest.compose.render import DigestRenderer
from digest.db import Database
from digest.models import Edition, Post
from digest.web.pages import Pages, template_environment
from tests.support.cli import run
from tests.support.web import HTML, client, make_app
from tests.test_render import ARCHIVE, DAY, make_selection, parse_html


def _visible(html: str) -> str:
    """The text of ``html``, one line per element, so that no phrase runs across two."""
    lines = (" ".join(t.split()) for t in parse_html(html).text)
    return "\n".join(line for line in lines if line)


def test_status_counts_subscribers_by_status(cli_env: Database, capsys) -> None:  # type: ignore[no-untyped-def]
    for email in ("a@example.com", "b@example.com"):
        assert run(capsys, "subscribers", "add", email, "--confirmed").code == 0
    assert run(capsys, "subscribers", "add", "c@example.com").code == 0
    out = run(capsys, "status").out
    line = next(x for x in out.splitlines() if x.startswith("subscribers:"))
    assert "active 2" in line and "pending 1" in line and "unsubscribed 0" in line
    data = json.loads(run(capsys, "status", "--json").out)
    assert data["subscribers"]["active"] == 2 and data["subscribers"]["pending"] == 1


async def test_featuring_categories_are_not_offered_as_topics(db: Database, settings) -> None:
    with db.transaction() as session:
        for i, cats in enumerate([["World", "Don't Miss"], ["Tech", "featured"], ["World"]]):
            link = f"https://news.example/{i}"
            session.add(Post(guid=f"g{i}", title=f"T{i}", link=link, categories=cats))
    async with client(make_app(settings, db)) as http:
        page = await http.get("/", headers=HTML)
    offered = re.findall(r'name="topics" value="([^"]+)"', page.text)
    assert sorted(offered) == ["Tech", "World"]


async def test_the_archive_tells_editions_with_one_title_apart(db: Database, settings) -> None:
    day = datetime(2026, 11, 30, tzinfo=UTC)
    with db.transaction() as session:
        for hour in (6, 7, 8):
            session.add(
                Edition(
                    key=f"daily:2026-11-30T{hour:02d}Z",
                    cadence="daily",
                    edition_at=day + timedelta(hours=hour),
                    subject="Storm hits the coast (+4 more) | The Daily Brief",
                    web_html="<html><body>x</body></html>",
                )
            )
    async with client(make_app(settings, db)) as http:
        listing = await http.get("/archive", headers=HTML)
    titles = re.findall(r'<a href="/archive/\d+">([^<]+)</a>', listing.text)
    assert len(titles) == 3 and len(set(titles)) == 3
    assert all(t.startswith("Storm hits the coast") for t in titles)
    assert any("November 30, 07:00 UTC" in t for t in titles)


def test_the_weekly_edition_is_dated_by_its_week(make_settings) -> None:  # type: ignore[no-untyped-def]
    renderer = DigestRenderer(make_settings(site_name="The Daily Brief"))
    weekly = renderer.render_body(make_selection(), cadence="weekly", local_date=DAY)
    daily = renderer.render_body(make_selection(), cadence="daily", local_date=DAY)
    web = renderer.render_web_version(make_selection(), cadence="weekly", local_date=DAY)
    for part in (weekly.content.text, _visible(weekly.content.html), _visible(web)):
        assert "This week: November 23 to 29, 2026" in part
        assert "Sunday, November 29, 2026" not in part
    assert "Sunday, November 29, 2026" in daily.content.text


def test_the_default_site_name_reads_well(make_settings) -> None:  # type: ignore[no-untyped-def]
    """With DIGEST_SITE_NAME left at "digest", nothing reads "daily digest of digest"."""
    settings = make_settings()
    assert settings.site_name == "digest"
    renderer = DigestRenderer(settings)
    pages = Pages(settings, template_environment(settings))
    shown = []
    for cadence in ("daily", "weekly"):
        body = renderer.render_body(
            make_selection(), cadence=cadence, local_date=DAY, archive_url=ARCHIVE
        )
        web = renderer.render_web_version(make_selection(), cadence=cadence, local_date=DAY)
        shown += [body.content.subject, body.content.text, _visible(body.content.html)]
        shown.append(_visible(web))
    confirm = renderer.render_confirm(name="Ann", confirm_url="https://n.example/confirm/t")
    shown += [confirm.subject, confirm.text, _visible(confirm.html)]
    for page in ("confirm", "unsubscribe", "unsubscribed", "subscribe"):
        html = pages.html(
            page,
            email="a@b.example",
            action="/x",
            preferences_url="/p",
            topics=[],
            honeypot="h",
            already=False,
        )
        shown.append(_visible(html))
    gap = r"[^\w\n]+"
    doubled = re.compile(rf"\bdigests?{gap}(?:(?:of|from|the){gap})*digests?\b", re.I)
    for text in shown:
        assert not doubled.search(text), doubled.search(text)


async def test_the_signup_page_promises_only_the_digest(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        page = (await http.get("/", headers=HTML)).text
    assert "offers" not in page and "special announcements" not in page
    assert "latest news" in page


async def test_readers_do_not_see_the_consent_version(db: Database, settings) -> None:
    async with client(make_app(settings, db)) as http:
        page = (await http.get("/", headers=HTML)).text
    assert "By subscribing you agree" in page
    assert "(consent" not in page and settings.consent_wording not in _visible(page)
