"""Recording bounce reports, complaints and unsubscribe mails in the store, on both stores.

The tests send a real edition through aiosmtpd first, so the reports quote Message-IDs the
outbox really made.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from digest import editions, subscribers, subscription_requests, subscriptions, suppressions
from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.bounces import record_reports
from digest.delivery.dsn import parse_report
from digest.delivery.inbound import read_inbound
from digest.delivery.running import drain
from digest.errors import NotAReport
from digest.mail.content import MailContent
from digest.mail.message_id import digest_prefix
from digest.models import Post, Subscription
from digest.states import DeliveryStatus
from digest.subscriber_fields import Consent
from tests.support.bounces import D, complaint, dsn, sent_edition, status_of
from tests.support.outbox import enqueue, make_edition
from tests.support.smtp_server import SmtpServer


def test_a_hard_bounce_stops_the_subscriber_and_a_second_copy_changes_nothing(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = sent_edition(db, make_settings, smtp_server)
    report = parse_report(dsn("p1@example.org", ids["p1@example.org"]))
    with db.transaction() as session:
        first = record_reports(session, report, settings)
    with db.transaction() as session:
        second = record_reports(session, report, settings)
    assert (first.stopped, first.unmatched, second.stopped) == (1, 0, 0)
    assert status_of(db, "p1@example.org") == ("bounced", "bounced")
    assert status_of(db, "p0@example.org") == ("active", "sent")
    with db.transaction() as session:
        assert suppressions.is_suppressed(session, "p1@example.org")
        reply = session.execute(
            sa.select(D.c.last_reply).where(D.c.status == DeliveryStatus.BOUNCED.value)
        ).scalar_one()
    assert reply.startswith("bounced after it was accepted: 5.1.1 550 5.1.1")


def test_a_soft_bounce_marks_the_mail_and_keeps_the_reader(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = sent_edition(db, make_settings, smtp_server)
    with db.transaction() as session:
        record_reports(
            session,
            parse_report(dsn("p2@example.org", ids["p2@example.org"], status="5.2.2")),
            settings,
        )
    assert status_of(db, "p2@example.org") == ("active", "bounced")
    with db.transaction() as session:
        assert not suppressions.is_suppressed(session, "p2@example.org")


def test_a_complaint_stops_the_reader_and_cancels_what_is_queued_for_them(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = sent_edition(db, make_settings, smtp_server)
    # Tomorrow's edition is queued but not sent yet when the complaint arrives.
    edition_id, body_id = make_edition(db, key="daily:2026-11-30T07Z")
    enqueue(db, edition_id, body_id, period="daily:2026-11-30", prefix="e2")
    spam = complaint("p0@example.org", ids["p0@example.org"])
    with db.transaction() as session:
        tally = record_reports(session, parse_report(spam), settings)
    assert (tally.by_kind["complaint"], tally.stopped) == (1, 1)
    with db.transaction() as session:
        person = subscribers.reader(session, "p0@example.org")
        states = (
            session.execute(
                sa.select(D.c.status).where(D.c.subscriber_id == person.id).order_by(D.c.id)
            )
            .scalars()
            .all()
        )
        assert person.status == "complained"
        assert states == ["sent", "cancelled"]
        assert suppressions.is_suppressed(session, "p0@example.org")


def test_a_report_about_someone_who_changed_their_address_leaves_the_new_one_alone(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = sent_edition(db, make_settings, smtp_server)
    with db.transaction() as session:
        person = subscribers.get(session, "p1@example.org")
        person.email = "p1-new@example.org"
    with db.transaction() as session:
        record_reports(
            session, parse_report(dsn("p1@example.org", ids["p1@example.org"])), settings
        )
    with db.transaction() as session:
        assert subscribers.reader(session, "p1-new@example.org").status == "active"
        assert suppressions.is_suppressed(session, "p1@example.org")


def test_reports_find_a_real_editions_digest_and_a_confirmation_mail(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    """The Message-IDs editions.make_edition and the subscribe path really make are found:
    a digest's through its (edition, subscriber) key, a confirmation's through the index."""
    settings = make_settings(database_url=db.url, smtp_url=smtp_server.url)
    now = utcnow()
    with db.transaction() as session:
        subscriptions.add(session, "reader@example.org", confirmed=True)
        subscription_requests.request_subscription(
            session, "asked@example.org", consent=Consent(at=now, source="test")
        )
        outbox.enqueue_transactional(
            session, kind="confirm", to_email="asked@example.org",
            subscriber_id=subscribers.reader(session, "asked@example.org").id,
            mail=MailContent("Please confirm", "Click", "<p>Click</p>"), domain="example.org",
        )  # fmt: skip
        session.add(
            Post(
                guid="p1",
                title="News",
                link="https://n.example/1",
                published_at=now - timedelta(hours=1),
                first_seen_at=now - timedelta(hours=1),
                updated_at=now - timedelta(hours=1),
            )
        )
    made = editions.make_edition(db, settings, cadence="daily", now=now, due_only=False)
    assert made is not None and made.recipients == 1, made
    assert drain(settings, db).sent == 2
    ids = {r.rcpt_tos[0]: r.message_id for r in smtp_server.handler.received}
    assert digest_prefix(1) in ids["reader@example.org"]
    reports = [
        *parse_report(dsn("reader@example.org", ids["reader@example.org"])),
        *parse_report(dsn("asked@example.org", ids["asked@example.org"])),
    ]
    with db.transaction() as session:
        tally = record_reports(session, reports, settings)
    assert (tally.unmatched, tally.stopped) == (0, 2)
    with db.transaction() as session:
        assert subscribers.reader(session, "reader@example.org").status == "bounced"
        assert subscribers.reader(session, "asked@example.org").status == "bounced"


def test_a_forged_report_stops_nobody(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    """By mail, a report acts only with one of our Message-IDs and that delivery's address."""
    settings, ids = sent_edition(db, make_settings, smtp_server)
    real = ids["p0@example.org"]
    guessed = re.sub(r"\.[0-9a-f]{16}@", ".0123456789abcdef@", real)
    forged = [
        dsn("p0@example.org", "<forged@attacker.example>"),  # not our Message-ID
        dsn("p0@example.org", ids["p1@example.org"]),  # ours, but p1's, not p0's
        dsn("p0@example.org", "<x@y.example>").replace(
            b"Message-ID: <x@y.example>\n", b""
        ),  # no Message-ID at all
        dsn("p0@example.org", guessed),  # edition and subscriber right, random part guessed
        dsn("p0@example.org", re.sub(r"\.[0-9a-f]{16}@", "@", real)),  # the guessable form
        dsn("p0@example.org", "<e99999999999.1.0123456789abcdef@example.org>"),  # no int4
    ]
    with db.transaction() as session:
        tally = record_reports(session, [r for raw in forged for r in parse_report(raw)], settings)
    assert (tally.unmatched, tally.stopped) == (6, 0)
    assert {status_of(db, f"p{i}@example.org") for i in range(3)} == {("active", "sent")}


def test_the_same_address_suppressed_by_two_transactions_at_once(db: Database) -> None:
    """The second insert waits for the first and then does nothing, on both stores."""
    started = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with db.transaction() as session:
            suppressions.suppress(session, "both@example.com", "bounce")
            started.set()
            time.sleep(0.3)  # hold the row while the second one tries

    def second() -> None:
        started.wait(10)
        try:
            with db.transaction() as session:
                suppressions.suppress(session, "both@example.com", "complaint")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.transaction() as session:
        assert suppressions.is_suppressed(session, "both@example.com")


def test_reports_that_are_not_about_our_mail_change_nothing(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, _ids = sent_edition(db, make_settings, smtp_server)
    with db.transaction() as session:
        tally = record_reports(
            session,
            parse_report(dsn("stranger@example.net", "<not-ours@elsewhere.example>")),
            settings,
        )
        statuses = session.execute(sa.select(Subscription.status)).scalars().all()
    assert (tally.unmatched, tally.stopped) == (1, 0)
    assert set(statuses) == {"active"}


# -- unsubscribing by mail ----------------------------------------------------------------------


def _reply_to_mailto(list_unsubscribe: str, sender: str) -> bytes:
    """The mail a client writes when its reader uses the List-Unsubscribe mailto."""
    mailto = next(t for t in re.findall(r"<([^>]+)>", list_unsubscribe) if t.startswith("mailto:"))
    address, _, query = mailto.removeprefix("mailto:").partition("?")
    subject = urllib.parse.parse_qs(query)["subject"][0]
    return (
        f"From: {sender}\r\nTo: {address}\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nSent from my phone\r\n"
    ).encode()


def test_a_mail_to_the_unsubscribe_address_unsubscribes_the_reader_its_token_names(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, _ids = sent_edition(
        db, make_settings, smtp_server, unsubscribe_mailto="leave@news.example"
    )
    mails = {
        r.rcpt_tos[0]: email.message_from_bytes(r.data, policy=email.policy.default)
        for r in smtp_server.handler.received
    }
    header = str(mails["p1@example.org"]["List-Unsubscribe"])
    assert "<mailto:leave@news.example?subject=unsubscribe%20" in header
    # The From line does not matter: the token does. A forged token unsubscribes nobody.
    request = _reply_to_mailto(header, "Someone Else <someone@elsewhere.example>")
    forged = request.replace(b"Subject: unsubscribe ", b"Subject: unsubscribe AAAA")
    with db.transaction() as session:
        tally = record_reports(session, read_inbound(request), settings)
        refused = record_reports(session, read_inbound(forged), settings)
    assert (tally.by_kind["unsubscribe"], tally.stopped) == (1, 1)
    assert (refused.unmatched, refused.stopped) == (1, 0)
    assert status_of(db, "p1@example.org")[0] == "unsubscribed"
    assert status_of(db, "p0@example.org")[0] == "active"
    with pytest.raises(NotAReport, match="nor an unsubscribe request"):
        read_inbound(request.replace(b"Subject: unsubscribe", b"Subject: hello"))


def test_a_mail_to_the_unsubscribe_address_from_an_alert_turns_off_alerts_only(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    """An alert's mailto carries its alerts-off token: the reader keeps the digest."""
    from digest import links
    from digest.models import Subscriber

    settings, _ids = sent_edition(
        db, make_settings, smtp_server, unsubscribe_mailto="leave@news.example"
    )
    with db.transaction() as session:
        sid = session.execute(
            sa.select(Subscriber.id).where(Subscriber.email == "p1@example.org")
        ).scalar_one()
        session.execute(sa.update(Subscription).values(alerts=True))
    url = links.alerts_off_url(settings, sid, "p1@example.org", 1)
    token = links.unsubscribe_token_in(url)
    request = (
        "From: p1@example.org\r\nTo: leave@news.example\r\n"
        f"Subject: unsubscribe {token}\r\n\r\nplease stop the alerts\r\n"
    ).encode()
    with db.transaction() as session:
        tally = record_reports(session, read_inbound(request), settings)
    assert tally.stopped == 0
    assert status_of(db, "p1@example.org")[0] == "active"
    with db.transaction() as session:
        alerts = dict(
            session.execute(
                sa.select(Subscriber.email, Subscription.alerts).join(
                    Subscription, Subscription.subscriber_id == Subscriber.id
                )
            ).all()
        )
    assert alerts["p1@example.org"] is False and alerts["p0@example.org"] is True
