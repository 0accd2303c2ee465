"""The desk's Today page and its charts: the list's numbers after real signups, confirmations
and unsubscriptions, the next editions, the outbox, failures with the server's reply, the
feeds; charts as SVG documents; the desk's headers; who may see it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta

import httpx
import pytest

from digest import newsletters, subscriptions
from digest import subscribers as store
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.models import Delivery
from digest.posts.feeds import add_feed, record_failure
from digest.schedule import next_runs
from digest.upcoming import next_editions
from digest.web.desk.render import DESK_HEADERS
from tests.support.desk import desk_client
from tests.support.web import client, make_app

PAGES = ("/desk/", "/desk/settings", "/desk/audit")
CHARTS = ("growth-30", "growth-90", "churn-30", "churn-90")


@asynccontextmanager
async def signed_in(
    settings: Settings, db: Database, role: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in with ``role`` (and its CSRF token), closed afterwards."""
    http, csrf = await desk_client(make_app(settings, db), db, role)
    try:
        yield http, csrf
    finally:
        await http.aclose()


def _cell(html: str, row_id: str, status: str) -> int:
    row = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.DOTALL)
    assert row, row_id
    found = re.search(rf'data-status="{status}">(\d+)<', row.group(1))
    assert found, (row_id, status)
    return int(found.group(1))


def _seed(db: Database) -> None:
    """Four readers of the first newsletter, two of a second: confirmed, unsubscribed, a
    pending one; a bounced mail with its reply; a failing feed."""
    with db.transaction() as s:
        second = newsletters.add(s, "evening", name="Evening brief")
        for name in ("ann", "bob", "cy", "dee"):
            subscriptions.add(s, f"{name}@example.com", timezone="Europe/Berlin", send_hour=7)
        subscriptions.add(s, "eve@example.com", newsletter_id=int(second.id or 0))
        subscriptions.add(s, "fay@example.com", newsletter_id=int(second.id or 0), confirmed=True)
    with db.transaction() as s:
        for name in ("ann", "bob", "cy", "eve"):
            subscriptions.confirm(s, store.get(s, f"{name}@example.com"))
    with db.transaction() as s:
        subscriptions.unsubscribe(s, store.get(s, "cy@example.com"))
        s.add(
            Delivery(
                to_email="gone@example.com",
                status="bounced",
                last_reply="550 5.1.1 <gone@example.com>: mailbox unknown",
                message_id="<b1@example.com>",
            )
        )
        record_failure(s, "https://feeds.example/broken.xml", now=utcnow(), error="HTTP 500")
        add_feed(s, "https://feeds.example/fine.xml")


async def test_today_shows_the_list_and_what_goes_out(settings: Settings, db: Database) -> None:
    _seed(db)
    async with signed_in(settings, db, "viewer") as (http, _):
        page = await http.get("/desk/")
    assert page.status_code == 200
    html = page.text
    # By status, all newsletters: ann, bob, eve, fay active; cy unsubscribed; dee pending.
    assert [_cell(html, "subscribers-total", s) for s in ("pending", "active", "unsubscribed")] == [
        1,
        4,
        1,
    ]
    assert "Evening brief" in html
    # Growth: five readers became active today, one left.
    today = utcnow().date().isoformat()
    assert re.search(rf"<th scope=\"row\">{today}</th><td>5</td><td>1</td>", html)
    assert 'alt="5 readers joined in the last 30 days' in html
    for chart in CHARTS:
        assert f'<img src="/desk/charts/{chart}.svg"' in html
    # The next editions: the first newsletter's two active Berlin readers at 07:00 local.
    runs = re.search(r'<table class="stack" id="next-runs">(.*?)</table>', html, re.DOTALL)
    assert runs and "Europe/Berlin" in runs.group(1) and "07:00" in runs.group(1)
    assert '<td data-label="Readers">2</td>' in runs.group(1)
    # The outbox, the failure with the server's reply, the feeds' health.
    assert re.search(r"<dt>bounced</dt><dd>1</dd>", html)
    assert "550 5.1.1 &lt;gone@example.com&gt;: mailbox unknown" in html
    assert "HTTP 500" in html and 'class="badge bad">failing' in html
    assert "not polled yet" in html


async def test_charts_are_svg_documents_with_title_and_no_script(
    settings: Settings, db: Database
) -> None:
    _seed(db)
    async with signed_in(settings, db, "viewer") as (http, _):
        for chart in CHARTS:
            answer = await http.get(f"/desk/charts/{chart}.svg")
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("image/svg+xml")
            svg = answer.text
            assert re.search(r"<svg\b[^>]*>\s*<title[^>]*>Readers who", svg)
            assert "<desc" in svg and "<script" not in svg
            # Nothing fetched from elsewhere: pygal's CDN script is left out.
            assert not re.search(r"(href|src)=\"https?://", svg)
            assert "script-src" not in answer.headers["content-security-policy"]
        growth = await http.get("/desk/charts/growth-30.svg")
        assert "5 readers joined in the last 30 days" in growth.text
        churn = await http.get("/desk/charts/churn-90.svg")
        assert "1 reader left in the last 90 days" in churn.text
        for wrong in ("growth-31", "sales-30", "growth-30.png"):
            assert (await http.get(f"/desk/charts/{wrong}.svg")).status_code == 404


@pytest.mark.parametrize("path", [*PAGES, "/desk/charts/growth-30.svg"])
async def test_signed_out_goes_to_sign_in(settings: Settings, db: Database, path: str) -> None:
    async with client(make_app(settings, db)) as http:
        answer = await http.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/desk/login?next=")


async def test_every_page_has_the_desk_headers_and_no_inline_code(
    settings: Settings, db: Database
) -> None:
    _seed(db)
    async with signed_in(settings, db, "viewer") as (http, _):
        for path in PAGES:
            answer = await http.get(path)
            assert answer.status_code == 200, path
            for header, value in DESK_HEADERS.items():
                assert answer.headers[header] == value, (path, header)
            assert "unsafe-inline" not in answer.headers["content-security-policy"]
            assert not re.search(r"<script|<style|\sstyle=", answer.text), path


def test_next_editions_read_from_the_kept_counts_agree_with_digest_status(
    settings: Settings, db: Database
) -> None:
    """Before any send hour of the day, the desk's list (the kept slot counts and the clock)
    and ``digest status``'s (the readers and their outbox rows) are the same."""
    with db.transaction() as s:
        second = newsletters.add(s, "evening", name="Evening brief", weekly_day="friday")
        for i, (zone, hour, cadence) in enumerate(
            [("UTC", 7, "daily"), ("Europe/Berlin", 7, "daily"), ("Asia/Kolkata", 9, "weekly")] * 3
        ):
            subscriptions.add(
                s,
                f"r{i}@example.com",
                timezone=zone,
                send_hour=hour,
                cadence=cadence,
                confirmed=i != 8,
                newsletter_id=int(second.id or 0) if i % 2 else 1,
            )
        # Someone moves to another zone: their readers move with them.
        store.get(s, "r0@example.com").timezone = "Asia/Kolkata"
    # Tomorrow's midnight: every reader joined before it, so each one's first digest is due at
    # their next send hour (today's midnight would, after 01:30 UTC, fall before the joining
    # of readers whose first digest then waits a day).
    now = datetime.combine(utcnow().date() + timedelta(days=1), time(0), tzinfo=UTC)
    with db.transaction() as s:
        desk = next_editions(s, settings, now, limit=20)
        status = next_runs(s, settings, now, limit=20)
    assert desk == status
    assert sum(r.subscribers for r in desk) == 8
