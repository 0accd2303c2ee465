"""Announcements end to end over real SMTP (aiosmtpd) on both stores: written, queued, sent by
a worker once per reader with the newsletter's List-Unsubscribe and both parts; sent twice,
left, cancelled, and scheduled at each reader's local hour through the scheduler's tick."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
import time_machine

from digest import announcements, newsletters, schedule, subscribers, subscriptions
from digest.announcement_rules import audience
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.support.tracked import target
from tests.support.web import client, make_app, path_of

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
BODY = (
    "# A new podcast\n\nListen to [episode one](https://pod.example.com/1).\n\n"
    "<script>document.cookie</script><p onclick='x()'>Thanks for reading.</p>\n"
)


@pytest.fixture
def server() -> SmtpServer:
    started = start_server(RecordingHandler())
    yield started  # type: ignore[misc]
    started.stop()


@pytest.fixture
def mailer(db: Database, make_settings, server: SmtpServer) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, smtp_url=server.url)


def _business(db: Database, *readers: tuple[str, str]) -> int:
    """Newsletter 2 with its own sender, and its readers (address, timezone)."""
    with db.transaction() as session:
        made = newsletters.add(
            session, "business", name="Business Brief", sender="Business <biz@example.com>"
        )
        nid = int(made.id or 0)
    with time_machine.travel(T0 - timedelta(days=10), tick=False), db.transaction() as session:
        for email, zone in readers:
            subscriptions.add(session, email, newsletter_id=nid, confirmed=True, timezone=zone)
    return nid


def _create(db: Database, subject: str = "Our podcast") -> int:
    draft = announcements.Draft(subject, BODY, None, audience(0))
    with db.transaction() as session:
        return int(announcements.create(session, "business", draft).id or 0)


def _send(db: Database, settings: Settings, ident: int) -> int:
    with db.transaction() as session:
        return announcements.send(session, settings, ident, T0).added


def _messages(server: SmtpServer) -> dict[str, EmailMessage]:
    """Each received message by its recipient; a repeat would fail here."""
    found: dict[str, EmailMessage] = {}
    for received in server.handler.received:
        (to,) = received.rcpt_tos
        assert to not in found, f"{to} got it twice"
        found[to] = BytesParser(policy=policy.default).parsebytes(received.data)  # type: ignore[assignment]
    return found


def _part(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


async def test_sent_once_per_reader_with_the_newsletters_links_and_both_parts(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    nid = _business(db, ("ann@example.com", "UTC"), ("bo@example.com", "UTC"))
    with db.transaction() as session:
        subscriptions.add(session, "digest-only@example.com", confirmed=True)  # newsletter 1
    ident = _create(db)
    assert _send(db, mailer, ident) == 2
    assert _send(db, mailer, ident) == 0  # sending twice queues nothing more
    assert (await asyncio.to_thread(drain, mailer, db)).sent == 2
    assert _send(db, mailer, ident) == 0
    assert (await asyncio.to_thread(drain, mailer, db)).sent == 0
    got = _messages(server)
    assert sorted(got) == ["ann@example.com", "bo@example.com"]
    ann = got["ann@example.com"]
    assert ann["Subject"] == "Our podcast" and ann["From"] == "Business <biz@example.com>"
    assert "Business Brief" in ann["List-Id"]
    assert ann["Message-ID"].startswith(f"<a{ident}.")
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html, text = _part(ann, "html"), _part(ann, "plain")
    assert "<h1" in html and "episode one" in html and "Thanks for reading." in html
    assert "script" not in html and "document.cookie" not in html and "onclick" not in html
    listen = re.search(r"Listen to episode one \((\S+)\)\.", text)
    # Through /r/ (aggregate tracking by default); not a post's link, so no UTM.
    assert listen is not None and target(mailer, listen.group(1)) == "https://pod.example.com/1"
    assert "ann@example.com" in text and "%%" not in text + html
    # Its one-click link leaves the business newsletter, and only that one.
    one_click = str(ann["List-Unsubscribe"]).split(">")[0].lstrip("<")
    async with client(make_app(mailer, db)) as http:
        left = await http.post(path_of(one_click), data={"List-Unsubscribe": "One-Click"})
        assert left.status_code == 200
    with db.transaction() as session:
        person = subscribers.get(session, "ann@example.com")
        assert subscribers.subscription_of(session, int(person.id or 0), nid).status == (
            "unsubscribed"
        )
        shown = announcements.summary(session, announcements.get(session, ident))
    assert shown["deliveries"] == {"sent": 2}


async def test_who_left_is_not_mailed_and_a_cancelled_one_never_goes(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    _business(db, ("stays@example.com", "UTC"), ("leaves@example.com", "UTC"))
    ident = _create(db)
    _send(db, mailer, ident)
    with db.transaction() as session:
        subscriptions.unsubscribe(session, subscribers.get(session, "leaves@example.com"), 2)
    assert (await asyncio.to_thread(drain, mailer, db)).sent == 1
    assert sorted(_messages(server)) == ["stays@example.com"]

    other = _create(db, "Never mind")
    _send(db, mailer, other)
    with db.transaction() as session:
        done = announcements.cancel(session, other, T0)
    assert (done.cancelled, done.sent) == (1, 0)
    assert (await asyncio.to_thread(drain, mailer, db)).sent == 0
    assert sorted(_messages(server)) == ["stays@example.com"]


async def test_the_local_hour_goes_zone_by_zone_on_the_schedulers_ticks(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    # 08:00 on 2 December: Tokyo's is 23:00 UTC on the 1st, Paris's 07:00, New York's 13:00.
    _business(
        db,
        ("tokyo@example.com", "Asia/Tokyo"),
        ("paris@example.com", "Europe/Paris"),
        ("ny@example.com", "America/New_York"),
    )
    ident = _create(db)
    with db.transaction() as session:
        announcements.schedule_local(session, ident, 8, date(2026, 12, 2), T0)

    async def tick_and_send(at: datetime) -> list[str]:
        with time_machine.travel(at, tick=True):
            await schedule.Scheduler(mailer, db, clock=lambda: at).digests_job()
            await asyncio.to_thread(drain, mailer, db)
        return sorted(_messages(server))

    assert await tick_and_send(datetime(2026, 12, 1, 22, 59, tzinfo=UTC)) == []
    assert await tick_and_send(datetime(2026, 12, 1, 23, 0, tzinfo=UTC)) == ["tokyo@example.com"]
    assert await tick_and_send(datetime(2026, 12, 2, 7, 0, tzinfo=UTC)) == [
        "paris@example.com",
        "tokyo@example.com",
    ]
    assert await tick_and_send(datetime(2026, 12, 2, 13, 30, tzinfo=UTC)) == [
        "ny@example.com",
        "paris@example.com",
        "tokyo@example.com",
    ]
    assert await tick_and_send(datetime(2026, 12, 2, 14, 0, tzinfo=UTC)) == [
        "ny@example.com",
        "paris@example.com",
        "tokyo@example.com",
    ]
    with db.transaction() as session:
        row = announcements.get(session, ident)
        assert (row.status, row.recipients) == ("queued", 3)
