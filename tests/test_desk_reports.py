"""The desk's reports over HTTP, signed in: an edition's page shows what it did (sent, bounces
hard and soft, complaints, unsubscribes after it, clicks, top stories), and ``/desk/reports``
lists the latest mails and each newsletter's readers per day, in tables, with no inline
script or style."""

from __future__ import annotations

import asyncio
import re

from digest import subscriptions
from digest.config import Settings
from digest.db import Database
from digest.posts import store
from tests.support.desk import desk_client
from tests.support.web import make_app
from tests.test_engagement_report import (
    COMPLAINT,
    HARD,
    SOFT,
    STORY,
    clicks,
    make_and_send,
    report_back,
    unsubscribe,
)


def seed(db: Database, settings: Settings) -> int:
    """Four readers; their edition sent; a hard and a soft bounce, a complaint, one left."""
    with db.transaction() as session:
        for email in ("ana@example.com", "ben@example.com", "cy@example.com", "dee@example.com"):
            subscriptions.add(session, email, confirmed=True)
        store.add_post(session, title="Harbour reopens", url=STORY)
    edition = make_and_send(db, settings)
    report_back(db, settings, edition, HARD, SOFT, COMPLAINT)
    unsubscribe(db, "dee@example.com")
    clicks(db, f"e{edition}", {f"{STORY}?utm_source=digest": (3, 6)}, ["h", "m"])
    return edition


def figure(html: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">([^<]*)<', html)
    assert found, f"no {name} on the page"
    return found.group(1).strip()


def no_inline_code(html: str) -> None:
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert not re.search(r" on[a-z]+=", html)


async def test_an_editions_page_shows_its_report(db: Database, settings: Settings) -> None:
    edition = await asyncio.to_thread(seed, db, settings)
    http, _ = await desk_client(make_app(settings, db), db, "viewer")
    page = await http.get(f"/desk/editions/{edition}")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    no_inline_code(html)
    shown = {
        name: figure(html, name)
        for name in (
            "sent",
            "bounced_hard",
            "bounced_soft",
            "complaints",
            "unsubscribes",
            "unique_clicks",
            "human_clicks",
            "machine_clicks",
            "click_rate",
        )
    }
    assert shown == {
        "sent": "2",
        "bounced_hard": "1",
        "bounced_soft": "1",
        "complaints": "1",
        "unsubscribes": "1",
        "unique_clicks": "1",
        "human_clicks": "3",
        "machine_clicks": "6",
        "click_rate": "50.0 %",
    }
    top = html.split('id="top-links"')[1].split("</table>")[0]
    assert "Harbour reopens" in top
    assert 'class="num">3</td><td data-label="Machine clicks" class="num">6<' in top


async def test_the_reports_page_lists_mails_and_days(db: Database, settings: Settings) -> None:
    edition = await asyncio.to_thread(seed, db, settings)
    http, _ = await desk_client(make_app(settings, db), db, "viewer")
    home = await http.get("/desk/")
    assert 'href="/desk/reports"' in home.text  # in the navigation
    page = await http.get("/desk/reports?newsletter=digest&days=7")
    assert page.status_code == 200
    html = page.text
    no_inline_code(html)
    row = html.split(f'id="mail-e{edition}"')[1].split("</tr>")[0]
    assert f'href="/desk/editions/{edition}"' in row
    assert (figure(row, "sent"), figure(row, "bounced"), figure(row, "unsubscribes")) == (
        "2",
        "2",
        "1",
    )
    days = html.split('id="readers-per-day"')[1].split("</table>")[0]
    assert days.count("<tr>") == 1 + 7  # the head and a week
    today = days.split("</tr>")[1]
    assert (figure(today, "joined"), figure(today, "unsubscribes")) == ("4", "1")
    assert (figure(today, "bounces"), figure(today, "complaints")) == ("1", "1")


async def test_the_reports_page_refuses_what_is_not_there_readably(
    sqlite_db: Database, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=sqlite_db.url)
    app = make_app(settings, sqlite_db)
    http, _ = await desk_client(app, sqlite_db, "viewer")
    unknown = await http.get("/desk/reports?newsletter=nope")
    assert unknown.status_code == 404 and "no newsletter" in unknown.text
    bad = await http.get("/desk/reports?days=9999")
    assert bad.status_code == 422
    empty = await http.get("/desk/reports")
    assert empty.status_code == 200 and "No mail sent yet." in empty.text
    async with make_client(app) as stranger:
        assert (await stranger.get("/desk/reports")).status_code in (303, 401)


def make_client(app):  # type: ignore[no-untyped-def]
    from tests.support.web import client

    return client(app)
