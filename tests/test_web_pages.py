"""Archive, health, errors and headers over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from digest.clock import utcnow
from digest.db import Database
from digest.errors import SettingsError
from digest.models import Edition, Post
from tests.support.web import HTML, JSON, client, make_app


def _editions(db: Database) -> list[int]:
    now = utcnow()
    with db.transaction() as session:
        rows = [
            Edition(
                key="daily:1",
                cadence="daily",
                edition_at=now - timedelta(days=2),
                subject="Monday's brief",
                web_html="<html><body>Monday</body></html>",
            ),
            Edition(
                key="daily:2",
                cadence="daily",
                edition_at=now - timedelta(days=1),
                subject="Tuesday's brief",
                web_html="<html><body>Tuesday</body></html>",
            ),
            Edition(
                key="test:1",
                cadence="daily",
                edition_at=now,
                is_test=True,
                subject="A test send",
                web_html="<html><body>Test</body></html>",
            ),
        ]
        session.add_all(rows)
        session.flush()
        return [e.id for e in rows]


async def test_archive_lists_published_editions_newest_first(db: Database, settings) -> None:
    _monday, tuesday, test = _editions(db)
    async with client(make_app(settings, db)) as http:
        listing = await http.get("/archive")
        one = await http.get(f"/archive/{tuesday}")
        hidden = await http.get(f"/archive/{test}")
        missing = await http.get("/archive/999999")
        huge = await http.get(f"/archive/{2**40}")
        word = await http.get("/archive/latest")
        bad_page = await http.get("/archive?page=0", headers=JSON)
        far_page = await http.get("/archive?page=50")
    assert listing.status_code == 200
    text = listing.text
    assert text.index("Tuesday&#39;s brief") < text.index("Monday&#39;s brief")
    assert "A test send" not in text
    assert one.status_code == 200 and "Tuesday" in one.text
    assert hidden.status_code == missing.status_code == 404
    assert "Page not found" in missing.text or "no edition" in missing.text
    assert huge.status_code == word.status_code == 422
    assert bad_page.status_code == 422 and "page" in bad_page.json()["error"]
    assert far_page.status_code == 200 and "No editions" in far_page.text


async def test_subscribe_page_offers_the_topics_in_use(db: Database, settings) -> None:
    with db.transaction() as session:
        for i, cats in enumerate([["World", "Politics"], ["World"], ["Tech"], ["World", "Tech"]]):
            session.add(
                Post(guid=f"g{i}", title=f"T{i}", link=f"https://news.example/{i}", categories=cats)
            )
    async with client(make_app(settings, db)) as http:
        page = (await http.get("/")).text
    boxes = [page.index(f'value="{t}"') for t in ("World", "Tech", "Politics")]
    assert boxes == sorted(boxes)  # most used first


async def test_healthz_follows_the_store(sqlite_db: Database, make_settings) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    async with client(make_app(settings, sqlite_db)) as http:
        ok = await http.get("/healthz")
    assert ok.status_code == 200 and ok.json() == {"status": "ok"}
    down = Database("postgresql+psycopg://nobody@127.0.0.1:9/none")
    try:
        async with client(make_app(settings, down)) as http:
            bad = await http.get("/healthz")
    finally:
        down.dispose()
    assert bad.status_code == 503 and bad.json()["status"] == "unavailable"


async def test_a_dead_store_is_503_not_500(sqlite_db: Database, make_settings) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    down = Database("postgresql+psycopg://nobody@127.0.0.1:9/none")
    try:
        async with client(make_app(settings, down)) as http:
            r = await http.post("/subscribe", json={"email": "x@example.com"})
            page = await http.get("/archive", headers=HTML)
    finally:
        down.dispose()
    assert r.status_code == 503 and "database" in r.json()["error"]
    assert page.status_code == 503 and "Temporarily unavailable" in page.text


async def test_unknown_pages_and_methods(sqlite_db: Database, make_settings) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    async with client(make_app(settings, sqlite_db)) as http:
        nothing = await http.get("/wp-admin")
        wrong = await http.put("/subscribe", json={})
        as_json = await http.get("/nope", headers=JSON)
        schema = await http.get("/openapi.json")
    assert nothing.status_code == 404 and "Page not found" in nothing.text
    assert nothing.headers["x-frame-options"] == "DENY"
    assert wrong.status_code == 405 and "allow" in wrong.headers
    assert as_json.status_code == 404 and "error" in as_json.json()
    assert schema.status_code == 200 and "/subscribe" in schema.json()["paths"]


async def test_operator_templates_win(sqlite_db: Database, make_settings, tmp_path) -> None:
    (tmp_path / "custom" / "web").mkdir(parents=True)
    (tmp_path / "custom" / "web" / "check_inbox.html").write_text("Custom: {{ message }}")
    settings = make_settings(database_url=sqlite_db.url, templates_dir=tmp_path / "custom")
    async with client(make_app(settings, sqlite_db)) as http:
        r = await http.post("/subscribe", data={"email": "o@example.com"})
    assert r.text.startswith("Custom: Thanks!")


def test_bad_web_settings_stop_start_up(sqlite_db: Database, make_settings) -> None:
    # The settings class checks them: the app is never built with them.
    with pytest.raises(SettingsError, match=r"DIGEST_TRUSTED_PROXIES: 'proxy\.lan'"):
        make_settings(database_url=sqlite_db.url, trusted_proxies="10.0.0.0/8,proxy.lan")
