"""``GET /metrics``: Prometheus text read from the store at scrape time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from digest import subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.running import run_worker
from digest.mail.content import MailContent
from digest.models import Delivery
from digest.posts import feeds
from digest.states import DeliveryKind, DeliveryStatus
from digest.web.app import create_app

D = Delivery.__table__  # type: ignore[attr-defined]


def client(app, ip: str = "127.0.0.1") -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A client on this machine (the scraper a tokenless /metrics answers), or at ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def seed(db: Database) -> None:
    """Three active, one pending, one unsubscribed; outbox rows in several states (test sends,
    which count; and one confirmation mail, which /metrics leaves out)."""
    now = utcnow()
    with db.transaction() as session:
        for i in range(3):
            subscriptions.add(session, f"on{i}@example.com", confirmed=True)
        subscriptions.add(session, "waiting@example.com")
        gone = subscriptions.add(session, "gone@example.com", confirmed=True)
        subscriptions.unsubscribe(session, gone)
        rows = []
        for i, (status, reply, latency) in enumerate(
            [
                (DeliveryStatus.SENT, "250 2.0.0 OK queued", 2),
                (DeliveryStatus.SENT, "250 2.0.0 OK queued", 40),
                (DeliveryStatus.SENT, "250 written", 7200),
                (DeliveryStatus.DEFERRED, "451 4.3.0 Temporary lookup failure", None),
                (DeliveryStatus.BOUNCED, "550 5.1.1 User unknown", None),
                (DeliveryStatus.SKIPPED, "past its send-by time; not sent late", None),
                (DeliveryStatus.QUEUED, None, None),
            ]
        ):
            did = outbox.enqueue_transactional(
                session,
                kind=DeliveryKind.TEST.value,
                to_email=f"m{i}@example.com",
                subscriber_id=None,
                mail=MailContent("s", "t", "<p>h</p>"),
                domain="example.com",
            )
            rows.append((did, status, reply, latency))
        confirmation = outbox.enqueue_transactional(
            session,
            kind=DeliveryKind.CONFIRM.value,
            to_email="waiting@example.com",
            subscriber_id=None,
            mail=MailContent("s", "t", "<p>h</p>"),
            domain="example.com",
        )
        rows.append((confirmation, DeliveryStatus.SENT, "250 2.0.0 OK queued", 1))
        for did, status, reply, latency in rows:
            values = {"status": status.value, "last_reply": reply}
            if latency is not None:
                values["created_at"] = now - timedelta(seconds=latency)
                values["sent_at"] = now
            session.execute(sa.update(D).where(D.c.id == did).values(**values))
        feeds.add_feed(session, "https://news.example/feed")
        feeds.add_feed(session, "https://broken.example/feed")
        feeds.record_failure(session, "https://broken.example/feed", now=now, error="HTTP 500")


async def test_metrics_show_the_store(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url)
    seed(db)
    async with client(create_app(settings, db)) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert got[("digest_subscribers", (("status", "active"),))] == 3
    # Every other status moves with a stranger's subscribe request: not shown.
    assert [k for k in got if k[0] == "digest_subscribers"] == [
        ("digest_subscribers", (("status", "active"),))
    ]
    assert got[("digest_deliveries", (("state", "sent"),))] == 3
    assert got[("digest_deliveries", (("state", "deferred"),))] == 1
    assert got[("digest_deliveries", (("state", "queued"),))] == 1
    assert got[("digest_deliveries", (("state", "failed"),))] == 0
    assert got[("digest_smtp_replies", (("class", "2xx"),))] == 3
    assert got[("digest_smtp_replies", (("class", "4xx"),))] == 1
    assert got[("digest_smtp_replies", (("class", "5xx"),))] == 1
    # Latencies of 2 s, 40 s and 2 h: cumulative buckets, as Prometheus expects.
    assert got[("digest_send_latency_seconds_bucket", (("le", "5.0"),))] == 1
    assert got[("digest_send_latency_seconds_bucket", (("le", "60.0"),))] == 2
    assert got[("digest_send_latency_seconds_bucket", (("le", "3600.0"),))] == 2
    assert got[("digest_send_latency_seconds_bucket", (("le", "+Inf"),))] == 3
    assert got[("digest_send_latency_seconds_count", ())] == 3
    assert got[("digest_send_latency_seconds_sum", ())] == pytest.approx(7242, abs=2)
    assert got[("digest_feeds", ())] == 2
    assert got[("digest_feeds_failing", ())] == 1
    assert got[("digest_editions", ())] == 0


async def test_metrics_follow_the_store_between_scrapes(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url)
    async with client(create_app(settings, db)) as http:
        before = samples((await http.get("/metrics")).text)
        with db.transaction() as session:
            subscriptions.add(session, "new@example.com", confirmed=True)
        after = samples((await http.get("/metrics")).text)
    assert before[("digest_subscribers", (("status", "active"),))] == 0
    assert after[("digest_subscribers", (("status", "active"),))] == 1
    assert after[("digest_send_latency_seconds_count", ())] == 0


async def test_two_apps_in_one_process_each_have_their_registry(sqlite_db, make_settings) -> None:
    settings = make_settings(database_url=sqlite_db.url)
    for _ in range(2):
        async with client(create_app(settings, sqlite_db)) as http:
            assert (await http.get("/metrics")).status_code == 200


async def test_metrics_with_the_store_down_answer_503_not_500(make_settings) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    settings = make_settings(database_url=url)
    down = Database(url)
    async with client(create_app(settings, down)) as http:
        response = await http.get("/metrics")
    assert response.status_code == 503
    assert "database is unavailable" in response.text
    assert "nobody" not in response.text and "127.0.0.1" not in response.text
    down.dispose()


async def test_with_a_metrics_token_only_a_scrape_that_carries_it_gets_the_numbers(
    sqlite_db: Database, make_settings
) -> None:
    settings = make_settings(
        database_url=sqlite_db.url, metrics_token="scrape-me-3f9a-0123456789abcdef"
    )
    with sqlite_db.transaction() as session:
        subscriptions.add(session, "ann@example.com", confirmed=True)
    async with client(create_app(settings, sqlite_db)) as http:
        for headers in ({}, {"Authorization": "Bearer scrape-me"}, {"Authorization": "Basic x"}):
            refused = await http.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert "digest_subscribers" not in refused.text
            assert "DIGEST_METRICS_TOKEN" in refused.text
        scraped = await http.get(
            "/metrics", headers={"Authorization": "Bearer scrape-me-3f9a-0123456789abcdef"}
        )
    assert scraped.status_code == 200
    assert samples(scraped.text)[("digest_subscribers", (("status", "active"),))] == 1


@pytest.mark.parametrize(
    ("peer", "headers", "trusted", "allowed"),
    [
        ("127.0.0.1", {}, "", True),
        ("::1", {}, "", True),
        ("::ffff:127.0.0.1", {}, "", True),
        ("203.0.113.9", {}, "", False),
        ("10.0.0.5", {}, "", False),
        # A reverse proxy on this machine that nobody said to trust: its clients are not local.
        ("127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, "", False),
        ("127.0.0.1", {"forwarded": "for=203.0.113.9"}, "", False),
        ("127.0.0.1", {"x-real-ip": "203.0.113.9"}, "", False),
        ("127.0.0.1", {"x-forwarded-for": "203.0.113.9"}, "127.0.0.1", False),
        ("127.0.0.1", {"x-forwarded-for": "127.0.0.1"}, "127.0.0.1", True),
        ("127.0.0.1", {"x-real-ip": "127.0.0.1"}, "127.0.0.1", False),  # no X-Forwarded-For
        # A proxy that adds its own X-Forwarded-For line below the client's (HAProxy's
        # "option forwardfor"): the client's invented line is not the one that counts.
        (
            "127.0.0.1",
            [("x-forwarded-for", "127.0.0.1"), ("x-forwarded-for", "203.0.113.9")],
            "127.0.0.1",
            False,
        ),
    ],
)
async def test_without_a_token_only_this_machine_may_scrape(
    sqlite_db: Database, make_settings, peer, headers, trusted, allowed
) -> None:
    settings = make_settings(database_url=sqlite_db.url, trusted_proxies=trusted)
    async with client(create_app(settings, sqlite_db), ip=peer) as http:
        response = await http.get("/metrics", headers=headers)
    if allowed:
        assert response.status_code == 200
        assert "digest_subscribers" in response.text
    else:
        assert response.status_code == 403
        assert "digest_" not in response.text
        assert "DIGEST_METRICS_TOKEN" in response.text


async def test_a_subscribe_request_moves_no_figure_whoever_the_address_is(
    db: Database, make_settings
) -> None:
    """The probe of the issue: subscribe a new address, then a known active one; an authorised
    scraper sees the same figures after each, even once the confirmation mail has gone."""
    settings = make_settings(database_url=db.url, metrics_token="scrape-me-3f9a-0123456789abcdef")
    scraper = {"Authorization": "Bearer scrape-me-3f9a-0123456789abcdef"}
    with db.transaction() as session:
        subscriptions.add(session, "on0@example.com", confirmed=True)
        gone = subscriptions.add(session, "gone@example.com", confirmed=True)
        subscriptions.unsubscribe(session, gone)
    app = create_app(settings, db)
    async with client(app) as http, client(app, ip="203.0.113.9") as stranger:
        assert (await stranger.get("/metrics")).status_code == 401
        scrapes = [(await http.get("/metrics", headers=scraper)).text]
        for probe in ("new-person@example.com", "on0@example.com", "gone@example.com"):
            answer = await stranger.post("/subscribe", json={"email": probe})
            assert answer.status_code == 202
            scrapes.append((await http.get("/metrics", headers=scraper)).text)
        # The confirmation mails go out and are recorded as sent.
        await run_worker(settings, db, asyncio.Event(), until_empty=True)
        scrapes.append((await http.get("/metrics", headers=scraper)).text)
    app.state.writer.close()
    with db.transaction() as session:
        confirms = session.execute(
            sa.select(D.c.to_email, D.c.status).where(D.c.kind == DeliveryKind.CONFIRM.value)
        ).all()
    # The new and the gone address got their mail; the active one's request left a row too,
    # skipped (the same work either way, see test_signup_timing.py), and nothing went to it.
    assert sorted(map(tuple, confirms)) == [
        ("gone@example.com", "sent"),
        ("new-person@example.com", "sent"),
        ("on0@example.com", "skipped"),
    ]
    for scrape in scrapes[1:]:
        assert samples(scrape) == samples(scrapes[0])
