"""The per-mail reports over HTTP: ``/api/stats/editions`` and its kin behind the admin token,
``/api/stats`` as it was, and ``/metrics`` with clicks per newsletter and nothing per reader."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from digest import subscriptions
from digest.config import Settings
from digest.db import Database
from digest.delivery.dsn import Kind
from digest.engagement_report import CONTRACT_KEYS
from digest.posts import store
from digest.web.app import create_app
from tests.test_engagement_report import (
    STORY,
    clicks,
    make_and_send,
    message_id,
    report_back,
    unsubscribe,
)
from tests.test_metrics import samples

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def client(app, ip: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def api(db: Database, make_settings) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, admin_token=TOKEN)


def seed(db: Database, settings: Settings) -> int:
    """Three readers; their edition sent, one bounced hard, one left after it; clicks."""
    with db.transaction() as session:
        for email in ("ana@example.com", "ben@example.com", "cy@example.com"):
            subscriptions.add(session, email, confirmed=True)
        store.add_post(session, title="Harbour reopens", url=STORY)
    edition = make_and_send(db, settings)
    report_back(db, settings, edition, (Kind.HARD, "ana@example.com", "5.1.1", "user unknown"))
    unsubscribe(db, "cy@example.com")
    clicks(db, f"e{edition}", {f"{STORY}?utm_campaign=x": (5, 7)}, ["h", "h", "m"])
    return edition


async def test_an_editions_report_and_the_latest_mails(db: Database, api: Settings) -> None:
    edition = await asyncio.to_thread(seed, db, api)
    async with client(create_app(api, db), "203.0.113.5") as http:
        one = await http.get(f"/api/stats/editions/{edition}", headers=AUTH)
        listed = await http.get("/api/stats/editions?newsletter=digest&days=3", headers=AUTH)
        whole = await http.get("/api/stats", headers=AUTH)
    assert one.status_code == 200, one.text
    found = one.json()
    assert {k: found[k] for k in CONTRACT_KEYS} == {
        "sent": 2,
        "bounced": 1,
        "complaints": 0,
        "unsubscribes": 1,
        "human_clicks": 5,
        "machine_clicks": 7,
        "unique_clicks": 2,
    }
    assert (found["bounced_hard"], found["click_rate"]) == (1, 1.0)
    assert found["top_links"][0]["title"] == "Harbour reopens"
    overview = listed.json()
    assert [e["id"] for e in overview["editions"]] == [edition]
    assert overview["totals"]["human_clicks"] == 5
    assert overview["days"][0]["joined"] == 3 and len(overview["days"]) == 3
    # /api/stats keeps its keys.
    assert {"subscribers", "deliveries", "editions", "feeds", "feeds_failing", "alerts"} <= set(
        whole.json()
    )


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/stats/editions/77", 404, "there is no edition #77"),
        ("/api/stats/alerts/3", 404, "there is no alert #3"),
        ("/api/stats/announcements/3", 404, "there is no announcement #3 that was sent"),
        ("/api/stats/editions?newsletter=nope", 404, "no newsletter 'nope'"),
        ("/api/stats/editions/0", 422, "mail_id"),
        ("/api/stats/editions?limit=100000", 422, "limit"),
    ],
)
async def test_what_is_not_there_is_a_readable_4xx(
    sqlite_db: Database, make_settings, path: str, status: int, says: str
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=sqlite_db.url, admin_token=TOKEN)
    async with client(create_app(settings, sqlite_db), "203.0.113.5") as http:
        answer = await http.get(path, headers=AUTH)
        stranger = await http.get(path)
    assert answer.status_code == status
    assert says in answer.json()["error"]
    assert stranger.status_code == 401


async def test_metrics_count_clicks_per_newsletter_and_nothing_per_reader(
    db: Database, api: Settings
) -> None:
    await asyncio.to_thread(seed, db, api)
    async with client(create_app(api, db), "127.0.0.1") as http:
        scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    found = samples(scraped.text)
    assert found[("digest_clicks_total", (("kind", "human"), ("newsletter", "digest")))] == 5
    assert found[("digest_clicks_total", (("kind", "machine"), ("newsletter", "digest")))] == 7
    # Unique clicks are per mail (digest stats): summing them would read every clicked copy.
    assert not any(name.startswith("digest_unique_clicks") for name, _ in found)
    assert "news.example.com" not in scraped.text and "example.com" not in scraped.text


async def test_a_services_hard_and_soft_events_count_as_such(db: Database, api: Settings) -> None:
    """Bounces a mail service reports through ``POST /api/bounces`` say hard or soft in words."""
    edition = await asyncio.to_thread(seed, db, api)
    events = [
        {"type": kind, "email": email, "message_id": message_id(db, edition, email)}
        for kind, email in (("hard", "ben@example.com"), ("soft", "cy@example.com"))
    ]
    async with client(create_app(api, db), "203.0.113.5") as http:
        recorded = await http.post("/api/bounces", json={"events": events}, headers=AUTH)
        found = (await http.get(f"/api/stats/editions/{edition}", headers=AUTH)).json()
    assert recorded.status_code == 200, recorded.text
    assert (found["bounced"], found["bounced_hard"], found["bounced_soft"]) == (3, 2, 1)
    assert found["sent"] == 0
