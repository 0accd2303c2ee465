"""The admin API's announcements over real HTTP on both stores: write, list, schedule, send,
cancel, a test copy over real SMTP, and every refusal as a 4xx with a sentence."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser

import httpx
import pytest

from digest import newsletters, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.web.app import create_app
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}
NEW = {"subject": "Our podcast", "body": "Listen to [it](https://pod.example.com/1)."}


@pytest.fixture
def server() -> SmtpServer:
    started = start_server(RecordingHandler())
    yield started  # type: ignore[misc]
    started.stop()


@pytest.fixture
def api(db: Database, make_settings, server: SmtpServer) -> tuple[httpx.AsyncClient, Settings]:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url, admin_token=TOKEN, smtp_url=server.url)
    with db.transaction() as session:
        for email in ("a@example.com", "b@example.com"):
            subscriptions.add(session, email, confirmed=True)
        subscriptions.add(session, "sport@example.com", confirmed=True, topics="sport")
    transport = httpx.ASGITransport(app=create_app(settings, db), client=("203.0.113.5", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=AUTH)
    return client, settings


async def test_write_schedule_send_cancel(api) -> None:  # type: ignore[no-untyped-def]
    http, _ = api
    async with http:
        dry = await http.post("/api/announcements", json={**NEW, "dry_run": True})
        assert dry.status_code == 201 and dry.json()["count"] == 3
        assert (await http.get("/api/announcements")).json() == []
        made = await http.post("/api/announcements", json={**NEW, "topics": ["cooking"]})
        assert made.status_code == 201, made.text
        ident = made.json()["id"]
        assert (made.json()["newsletter"], made.json()["status"]) == ("digest", "draft")
        at = (utcnow() + timedelta(hours=2)).isoformat()
        scheduled = await http.post(f"/api/announcements/{ident}/schedule", json={"at": at})
        assert scheduled.status_code == 200, scheduled.text
        assert scheduled.json()["announcement"]["status"] == "scheduled"
        sent = await http.post(f"/api/announcements/{ident}/send")
        assert sent.status_code == 200 and sent.json()["queued"] == 2  # not the sport reader
        again = await http.post(f"/api/announcements/{ident}/send")
        assert again.json()["queued"] == 0
        one = (await http.get(f"/api/announcements/{ident}")).json()
        assert (one["status"], one["recipients"], one["deliveries"]) == ("queued", 2, {"queued": 2})
        cancelled = await http.post(f"/api/announcements/{ident}/cancel")
        assert cancelled.status_code == 200
        assert (cancelled.json()["cancelled"], cancelled.json()["sent"]) == (2, 0)
        twice = await http.post(f"/api/announcements/{ident}/cancel")
        assert twice.status_code == 409 and "already cancelled" in twice.json()["error"]
        listed = (await http.get("/api/announcements")).json()
        assert [(a["id"], a["status"]) for a in listed] == [(ident, "cancelled")]


async def test_refusals_are_4xx_with_a_reason(api, db: Database) -> None:  # type: ignore[no-untyped-def]
    http, _ = api
    async with http:
        for body, status, words in (
            ({"body": "x"}, 422, "subject"),
            ({"subject": "S", "body": "  "}, 422, "empty"),
            ({**NEW, "addresses": ["nobody@example.com"]}, 422, "no active reader"),
            ({**NEW, "addresses": ["not an address"]}, 422, "line 1"),
            ({**NEW, "newsletter": "nope"}, 404, "nope"),
            ({**NEW, "surprise": 1}, 422, "surprise"),
        ):
            answer = await http.post("/api/announcements", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert words in answer.json()["error"]
        with db.transaction() as session:
            newsletters.add(session, "old", name="Old")
            subscriptions.add(session, "a@example.com", newsletter_id=2, confirmed=True)
        with db.transaction() as session:
            newsletters.archive(session, newsletters.get(session, "old"))
        archived = await http.post("/api/announcements", json={**NEW, "newsletter": "old"})
        assert archived.status_code == 409 and "archived" in archived.json()["error"]
        ident = (
            await http.post("/api/announcements", json={**NEW, "newsletter": "digest"})
        ).json()["id"]
        past = (utcnow() - timedelta(minutes=5)).isoformat()
        late = await http.post(f"/api/announcements/{ident}/schedule", json={"at": past})
        assert late.status_code == 422 and "has passed" in late.json()["error"]
        both = await http.post(
            f"/api/announcements/{ident}/schedule", json={"at": past, "local_hour": 9}
        )
        assert both.status_code == 422
        assert (await http.get("/api/announcements/999")).status_code == 404
        assert (await http.post("/api/announcements/999/send")).status_code == 404
        stranger = await http.get("/api/announcements", headers={"authorization": "Bearer no"})
        assert stranger.status_code == 401


async def test_a_test_copy_goes_at_once_marked_as_a_test(api, server: SmtpServer) -> None:  # type: ignore[no-untyped-def]
    http, _ = api
    async with http:
        ident = (await http.post("/api/announcements", json=NEW)).json()["id"]
        tested = await http.post(
            f"/api/announcements/{ident}/test", json={"address": "Editor@Example.com"}
        )
        assert tested.status_code == 200, tested.text
        assert tested.json()["address"] == "editor@example.com"
        one = (await http.get(f"/api/announcements/{ident}")).json()
        assert (one["status"], one["deliveries"]) == ("draft", {})  # nothing queued
    (received,) = server.handler.received
    message = BytesParser(policy=policy.default).parsebytes(received.data)
    assert message["Subject"] == "[TEST] Our podcast"
    assert received.rcpt_tos == ("editor@example.com",)
