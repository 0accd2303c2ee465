"""Bounces and complaints that come back by mail: reading the reports, recording them, the CLI.

The reports in ``tests/bounces/`` are shaped like what Postfix, a large mailbox provider and a
feedback loop send. The store tests send a real edition through aiosmtpd first, so the reports
quote Message-IDs the outbox really made.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import io
import quopri
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from digest import editions, subscribers
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.bounces import record_reports
from digest.delivery.dsn import Kind, Report, parse_report
from digest.delivery.inbound import read_inbound
from digest.delivery.worker import drain
from digest.errors import NotAReport
from digest.models import Delivery, Post, Subscriber
from digest.states import DeliveryStatus
from digest.subscribers import Consent
from digest.web.app import create_app
from tests.cli_helpers import run
from tests.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.test_outbox import add_subscribers, enqueue, make_edition

REPORTS = Path(__file__).parent / "bounces"
D = Delivery.__table__  # type: ignore[attr-defined]


def report_file(name: str) -> bytes:
    return (REPORTS / name).read_bytes()


def dsn(recipient: str, message_id: str, *, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification for one recipient, quoting ``message_id``."""
    return (
        report_file("postfix-user-unknown.eml")
        .replace(b"Gone@Example.com", recipient.encode())
        .replace(b"<e1.2@news.example>", message_id.encode())
        .replace(b"Status: 5.1.1", f"Status: {status}".encode())
        .replace(b"Action: failed", f"Action: {action}".encode())
    )


def _complaint(address: str, message_id: str) -> bytes:
    return (
        report_file("arf-abuse.eml")
        .replace(b"<ann@example.com>", f"<{address}>".encode())
        .replace(b"<e1.1@news.example>", message_id.encode())
    )


# -- reading -------------------------------------------------------------------------------------


def test_reports_from_the_field_read_as_what_they_say() -> None:
    (hard,) = parse_report(report_file("postfix-user-unknown.eml"))
    assert hard == Report(
        Kind.HARD,
        "gone@example.com",
        "<e1.2@news.example>",
        "5.1.1",
        "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        original="gone@example.com",
    )
    (full,) = parse_report(report_file("mailbox-full.eml"))
    assert (full.kind, full.recipient, full.message_id) == (
        Kind.SOFT,
        "full@example.org",
        "<e1.4@news.example>",
    )
    (late,) = parse_report(report_file("delayed.eml"))
    assert late.kind is Kind.DELAYED and not late.acts
    (spam,) = parse_report(report_file("arf-abuse.eml"))
    assert (spam.kind, spam.recipient, spam.message_id, spam.status) == (
        Kind.COMPLAINT,
        "ann@example.com",
        "<e1.1@news.example>",
        "abuse",
    )
    with pytest.raises(NotAReport, match="not a multipart/report"):
        parse_report(report_file("out-of-office.eml"))


def test_a_report_about_internationalised_mail_is_read_too() -> None:
    """RFC 6533: the global delivery-status type, with a UTF-8 address in \\x{..} escapes."""
    (report,) = parse_report(report_file("global-dsn.eml"))
    assert (report.kind, report.recipient, report.message_id) == (
        Kind.HARD,
        "josé@bücher.example",
        "<e1.9@news.example>",
    )


@pytest.mark.parametrize("encoding", ["8bit", "base64", "quoted-printable"])
@pytest.mark.parametrize(
    "address", [b"jos\\x{E9}@b\\x{FC}cher.example", "josé@bücher.example".encode()]
)
def test_a_global_report_in_any_transfer_encoding_with_any_address_form(
    encoding: str, address: bytes
) -> None:
    """RFC 6533 allows the address as \\x{..} escapes or as raw UTF-8, and the part in any
    transfer encoding; every combination reads the same."""
    raw = report_file("global-dsn.eml").replace(b"jos\\x{E9}@b\\x{FC}cher.example", address)
    marker = b"Content-Type: message/global-delivery-status\nContent-Transfer-Encoding: 8bit\n\n"
    head, _, rest = raw.partition(marker)
    body, sep, tail = rest.partition(b"\n--G1")
    encode = {"8bit": bytes, "base64": base64.encodebytes, "quoted-printable": quopri.encodestring}
    marker = marker.replace(b"8bit", encoding.encode())
    (report,) = parse_report(head + marker + encode[encoding](body) + sep + tail)
    assert (report.kind, report.recipient, report.message_id) == (
        Kind.HARD,
        "josé@bücher.example",
        "<e1.9@news.example>",
    )


def test_a_failed_recipient_with_a_4xx_status_failed_for_good() -> None:
    """Postfix gives up after its queue lifetime with Action: failed, Status: 4.4.7."""
    (report,) = parse_report(dsn("late@example.com", "<x.1@news.example>", status="4.4.7"))
    assert report.kind is Kind.SOFT


def test_strangers_fields_come_back_short_printable_and_one_recipient_only() -> None:
    many = b"".join(
        b"Final-Recipient: rfc822; victim%d@example.com\nAction: failed\nStatus: 5.1.1\n\n" % i
        for i in range(500)
    )
    raw = (
        dsn("first@example.com", "<a\x00b@news.example>")
        .replace(b"Diagnostic-Code: smtp; 550", b"Diagnostic-Code: smtp; \x1b]0;pwned\x07 550")
        .replace(b"Original-Recipient: rfc822;gone@example.com\n", b"")
        .replace(b"--4F2A81C0.1764399609/mx.news.example\nContent-Description: Undelivered", many
                 + b"--4F2A81C0.1764399609/mx.news.example\nContent-Description: Undelivered")
    )  # fmt: skip
    (report,) = parse_report(raw)
    assert report.recipient == "first@example.com"
    assert report.message_id is None  # the NUL makes it no Message-ID at all
    assert "\x1b" not in report.detail and "\x07" not in report.detail
    encoded_words = b" ".join([b"=?utf-8?q?a?="] * 60_000)
    (long,) = parse_report(
        dsn("x@example.com", "<x.1@n.example>").replace(b"smtp; 550", b"smtp; " + encoded_words)
    )
    assert len(long.detail) <= 1000


def test_a_not_spam_feedback_report_is_no_complaint() -> None:
    raw = report_file("arf-abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    with pytest.raises(NotAReport, match="not a complaint"):
        parse_report(raw)


@given(st.binary(max_size=3000))
def test_any_bytes_are_a_report_or_not_a_report(raw: bytes) -> None:
    try:
        reports = parse_report(raw)
    except NotAReport:
        return
    assert reports and all(isinstance(r, Report) for r in reports)


@given(
    klass=st.sampled_from("245"),
    subject=st.integers(0, 9),
    detail=st.integers(0, 20),
    action=st.sampled_from(["failed", "delayed", "delivered", "relayed"]),
    local=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}", fullmatch=True),
)
def test_a_dsn_is_read_by_the_rules(
    klass: str, subject: int, detail: int, action: str, local: str
) -> None:
    """Failed 5.1.{1,2,3,6,10}: hard; any other failed, 4.x.x included: soft (failed is
    final); delayed: delayed; delivered or relayed: not a report. The recipient comes back
    normalised."""
    if ".." in local or local.endswith(".") or local.startswith("."):
        return
    status = f"{klass}.{subject}.{detail}"
    raw = dsn(f"{local}@Example.COM", "<x.1@news.example>", status=status, action=action)
    if action in ("delivered", "relayed"):
        with pytest.raises(NotAReport):
            parse_report(raw)
        return
    (report,) = parse_report(raw)
    assert report.recipient == f"{local}@example.com".lower()
    assert report.message_id == "<x.1@news.example>"
    if action == "delayed":
        assert report.kind is Kind.DELAYED
    elif (subject, detail) in {(1, 1), (1, 2), (1, 3), (1, 6), (1, 10)} and klass == "5":
        assert report.kind is Kind.HARD
    else:
        assert report.kind is Kind.SOFT


# -- recording -----------------------------------------------------------------------------------


def _sent_edition(
    db: Database,
    make_settings: Callable[..., Any],
    smtp_server: SmtpServer,
    n: int = 3,
    **more_settings: Any,
) -> tuple[Settings, dict[str, str]]:
    """An edition sent for real to p0..p{n-1}@example.org: the settings it was sent with, and
    each address's Message-ID as the server received it."""
    add_subscribers(db, n)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    settings = make_settings(database_url=db.url, smtp_url=smtp_server.url, **more_settings)
    assert drain(settings, db).sent == n
    return settings, {r.rcpt_tos[0]: r.message_id for r in smtp_server.handler.received}


def _status_of(db: Database, email: str) -> tuple[str, str]:
    """(subscriber status, their delivery's status)."""
    with db.transaction() as session:
        person = subscribers.get(session, email)
        row = session.execute(sa.select(D.c.status).where(D.c.subscriber_id == person.id))
        return person.status, row.scalar_one()


def test_a_hard_bounce_stops_the_subscriber_and_a_second_copy_changes_nothing(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = _sent_edition(db, make_settings, smtp_server)
    report = parse_report(dsn("p1@example.org", ids["p1@example.org"]))
    with db.transaction() as session:
        first = record_reports(session, report, settings)
    with db.transaction() as session:
        second = record_reports(session, report, settings)
    assert (first.stopped, first.unmatched, second.stopped) == (1, 0, 0)
    assert _status_of(db, "p1@example.org") == ("bounced", "bounced")
    assert _status_of(db, "p0@example.org") == ("active", "sent")
    with db.transaction() as session:
        assert subscribers.is_suppressed(session, "p1@example.org")
        reply = session.execute(
            sa.select(D.c.last_reply).where(D.c.status == DeliveryStatus.BOUNCED.value)
        ).scalar_one()
    assert reply.startswith("bounced after it was accepted: 5.1.1 550 5.1.1")


def test_a_soft_bounce_marks_the_mail_and_keeps_the_reader(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = _sent_edition(db, make_settings, smtp_server)
    with db.transaction() as session:
        record_reports(
            session,
            parse_report(dsn("p2@example.org", ids["p2@example.org"], status="5.2.2")),
            settings,
        )
    assert _status_of(db, "p2@example.org") == ("active", "bounced")
    with db.transaction() as session:
        assert not subscribers.is_suppressed(session, "p2@example.org")


def test_a_complaint_stops_the_reader_and_cancels_what_is_queued_for_them(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = _sent_edition(db, make_settings, smtp_server)
    # Tomorrow's edition is queued but not sent yet when the complaint arrives.
    edition_id, body_id = make_edition(db, key="daily:2026-11-30T07Z")
    enqueue(db, edition_id, body_id, period="daily:2026-11-30", prefix="e2")
    spam = _complaint("p0@example.org", ids["p0@example.org"])
    with db.transaction() as session:
        tally = record_reports(session, parse_report(spam), settings)
    assert (tally.by_kind["complaint"], tally.stopped) == (1, 1)
    with db.transaction() as session:
        person = subscribers.get(session, "p0@example.org")
        states = (
            session.execute(
                sa.select(D.c.status).where(D.c.subscriber_id == person.id).order_by(D.c.id)
            )
            .scalars()
            .all()
        )
        assert person.status == "complained"
        assert states == ["sent", "cancelled"]
        assert subscribers.is_suppressed(session, "p0@example.org")


def test_a_report_about_someone_who_changed_their_address_leaves_the_new_one_alone(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = _sent_edition(db, make_settings, smtp_server)
    with db.transaction() as session:
        person = subscribers.get(session, "p1@example.org")
        person.email = "p1-new@example.org"
    with db.transaction() as session:
        record_reports(
            session, parse_report(dsn("p1@example.org", ids["p1@example.org"])), settings
        )
    with db.transaction() as session:
        assert subscribers.get(session, "p1-new@example.org").status == "active"
        assert subscribers.is_suppressed(session, "p1@example.org")


def test_reports_find_a_real_editions_digest_and_a_confirmation_mail(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    """The Message-IDs editions.make_edition and the subscribe path really make are found:
    a digest's through its (edition, subscriber) key, a confirmation's through the index."""
    settings = make_settings(database_url=db.url, smtp_url=smtp_server.url)
    now = utcnow()
    with db.transaction() as session:
        subscribers.add(session, "reader@example.org", confirmed=True)
        subscribers.request_subscription(
            session, "asked@example.org", consent=Consent(at=now, source="test")
        )
        outbox.enqueue_transactional(
            session, kind="confirm", to_email="asked@example.org",
            subscriber_id=subscribers.get(session, "asked@example.org").id,
            subject="Please confirm", text="Click", html="<p>Click</p>", domain="example.org",
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
    assert outbox.digest_prefix(1) in ids["reader@example.org"]
    reports = [
        *parse_report(dsn("reader@example.org", ids["reader@example.org"])),
        *parse_report(dsn("asked@example.org", ids["asked@example.org"])),
    ]
    with db.transaction() as session:
        tally = record_reports(session, reports, settings)
    assert (tally.unmatched, tally.stopped) == (0, 2)
    with db.transaction() as session:
        assert subscribers.get(session, "reader@example.org").status == "bounced"
        assert subscribers.get(session, "asked@example.org").status == "bounced"


def test_a_forged_report_stops_nobody(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    """By mail, a report acts only with one of our Message-IDs and that delivery's address."""
    settings, ids = _sent_edition(db, make_settings, smtp_server)
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
    assert {_status_of(db, f"p{i}@example.org") for i in range(3)} == {("active", "sent")}


def test_the_same_address_suppressed_by_two_transactions_at_once(db: Database) -> None:
    """The second insert waits for the first and then does nothing, on both stores."""
    started = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with db.transaction() as session:
            subscribers.suppress(session, "both@example.com", "bounce")
            started.set()
            time.sleep(0.3)  # hold the row while the second one tries

    def second() -> None:
        started.wait(10)
        try:
            with db.transaction() as session:
                subscribers.suppress(session, "both@example.com", "complaint")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.transaction() as session:
        assert subscribers.is_suppressed(session, "both@example.com")


def test_reports_that_are_not_about_our_mail_change_nothing(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, _ids = _sent_edition(db, make_settings, smtp_server)
    with db.transaction() as session:
        tally = record_reports(
            session,
            parse_report(dsn("stranger@example.net", "<not-ours@elsewhere.example>")),
            settings,
        )
        statuses = session.execute(sa.select(Subscriber.status)).scalars().all()
    assert (tally.unmatched, tally.stopped) == (1, 0)
    assert set(statuses) == {"active"}


# -- soft bounces in a row -----------------------------------------------------------------------


class RefusesP1(RecordingHandler):
    """Refuses p1 with ``reply``; everyone else's mailbox takes mail."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address == "p1@example.org":
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.mark.parametrize(
    ("reply", "limit", "stopped"),
    [
        ("552 5.2.2 Mailbox full", 3, True),
        ("552 5.2.2 Mailbox full", 0, False),  # the rule is off
        ("550 5.7.1 Message rejected as spam", 3, False),  # about the mail, not the reader
    ],
)
def test_digests_refused_for_a_full_mailbox_limit_times_in_a_row_stop_the_reader(
    db: Database, make_settings: Callable[..., Any], reply: str, limit: int, stopped: bool
) -> None:
    server = start_server(RefusesP1(reply))
    try:
        settings = make_settings(database_url=db.url, smtp_url=server.url, soft_bounce_limit=limit)
        add_subscribers(db, 2)
        seen = []
        for day in (1, 2, 3):
            edition_id, body_id = make_edition(db, key=f"daily:2026-12-0{day}T07Z")
            enqueue(db, edition_id, body_id, period=f"daily:2026-12-0{day}", prefix=f"e{day}")
            drain(settings, db)
            with db.transaction() as session:
                seen.append(subscribers.get(session, "p1@example.org").status)
    finally:
        server.stop()
    assert seen == ["active", "active", "bounced" if stopped else "active"]
    with db.transaction() as session:
        assert subscribers.get(session, "p0@example.org").status == "active"
        assert subscribers.is_suppressed(session, "p1@example.org") == stopped


def test_soft_bounces_of_an_old_address_do_not_stop_the_new_one(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = _sent_edition(db, make_settings, smtp_server, soft_bounce_limit=1)
    with db.transaction() as session:
        subscribers.get(session, "p1@example.org").email = "p1-new@example.org"
    with db.transaction() as session:
        tally = record_reports(
            session,
            parse_report(dsn("p1@example.org", ids["p1@example.org"], status="5.2.2")),
            settings,
        )
    assert tally.stopped == 0
    with db.transaction() as session:
        assert subscribers.get(session, "p1-new@example.org").status == "active"
        assert not subscribers.is_suppressed(session, "p1-new@example.org")


def test_soft_bounce_reports_count_in_a_row_and_a_delivered_digest_breaks_the_row(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, _ids = _sent_edition(db, make_settings, smtp_server, soft_bounce_limit=2)
    for day in (2, 3):
        edition_id, body_id = make_edition(db, key=f"daily:2026-12-0{day}T07Z")
        enqueue(db, edition_id, body_id, period=f"daily:2026-12-0{day}", prefix=f"e{day}")
        assert drain(settings, db).sent == 3
    received = [(r.rcpt_tos[0], r.message_id) for r in smtp_server.handler.received]

    def soft(address: str, nth: int) -> None:
        mid = [m for a, m in received if a == address][nth]
        with db.transaction() as session:
            record_reports(session, parse_report(dsn(address, mid, status="5.2.2")), settings)

    soft("p0@example.org", 0)
    soft("p0@example.org", 2)  # the second digest reached them: no two in a row
    soft("p1@example.org", 1)
    soft("p1@example.org", 2)  # the last two both bounced
    with db.transaction() as session:
        assert subscribers.get(session, "p0@example.org").status == "active"
        assert subscribers.get(session, "p1@example.org").status == "bounced"


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
    settings, _ids = _sent_edition(
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
    assert _status_of(db, "p1@example.org")[0] == "unsubscribed"
    assert _status_of(db, "p0@example.org")[0] == "active"
    with pytest.raises(NotAReport, match="nor an unsubscribe request"):
        read_inbound(request.replace(b"Subject: unsubscribe", b"Subject: hello"))


# -- the command ---------------------------------------------------------------------------------


def test_import_reads_a_maildir_and_stdin_and_says_what_it_did(
    cli_env: Database,
    make_settings: Callable[..., Any],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _settings, ids = _sent_edition(cli_env, make_settings, smtp_server)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(dsn("p0@example.org", ids["p0@example.org"]))
    (maildir / "cur" / "2.eml").write_bytes(report_file("out-of-office.eml"))
    (maildir / "tmp" / "3.eml").write_bytes(b"half-written")
    r = run(capsys, "bounces", "import", str(maildir))
    assert r.code == 0, r.err
    assert "2 message(s): 1 hard bounce(s)" in r.out
    assert "1 subscriber(s) stopped" in r.out
    assert "not a report: " in r.out and "2.eml" in r.out

    monkeypatch.setattr("sys.stdin", _Stdin(_complaint("p1@example.org", ids["p1@example.org"])))
    r = run(capsys, "bounces", "import", "-")
    assert r.code == 0 and "1 complaint(s)" in r.out and "1 subscriber(s) stopped" in r.out
    assert _status_of(cli_env, "p0@example.org") == ("bounced", "bounced")
    assert _status_of(cli_env, "p1@example.org") == ("complained", "sent")


def test_a_message_the_store_refuses_is_listed_and_the_others_are_recorded(
    sqlite_db: Database,
    make_settings: Callable[..., Any],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A fault injected in the real store (a trigger refusing p0's row) fails p0's report the
    same way on every retry: it is listed, p1's is recorded, and the exit code is 65, not 75."""
    _settings, ids = _sent_edition(sqlite_db, make_settings, smtp_server)
    monkeypatch.setenv("DIGEST_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    with sqlite_db.transaction() as session:
        session.execute(
            sa.text(
                "CREATE TRIGGER refuse_p0 BEFORE UPDATE ON deliveries "
                "WHEN old.to_email = 'p0@example.org' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.eml").write_bytes(dsn("p0@example.org", ids["p0@example.org"]))
    (folder / "b.eml").write_bytes(dsn("p1@example.org", ids["p1@example.org"]))
    r = run(capsys, "bounces", "import", str(folder))
    assert r.code == 65
    assert "not recorded: " in r.out and "a.eml" in r.out and "refused" in r.out
    assert r.err.strip() == "error: 1 message(s) could not be recorded"
    assert _status_of(sqlite_db, "p0@example.org") == ("active", "sent")
    assert _status_of(sqlite_db, "p1@example.org") == ("bounced", "bounced")


def test_import_with_the_store_down_exits_75_so_the_mta_keeps_the_mail(
    make_settings: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    monkeypatch.setattr("sys.stdin", _Stdin(dsn("p0@example.org", "<e1.1@news.example>")))
    r = run(capsys, "bounces", "import", "-")
    assert r.code == 75
    assert len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("error: reports not recorded, try again later")


def test_import_of_a_missing_path_is_one_line_and_writes_nothing(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(report_file("postfix-user-unknown.eml"))
    with cli_env.transaction() as session:
        subscribers.add(session, "gone@example.com", confirmed=True)
    r = run(capsys, "bounces", "import", str(good), str(tmp_path / "missing"))
    assert r.code == 66
    assert r.err.strip().splitlines() == [f"error: no such file or folder: {tmp_path / 'missing'}"]
    with cli_env.transaction() as session:
        assert subscribers.get(session, "gone@example.com").status == "active"


class _Stdin:
    """Stands in for sys.stdin: the command reads ``sys.stdin.buffer``."""

    def __init__(self, data: bytes, *, terminal: bool = False) -> None:
        self.buffer = io.BytesIO(data)
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_import_with_nothing_to_read_says_so_instead_of_waiting_on_the_terminal(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin(b"", terminal=True))
    r = run(capsys, "bounces", "import")
    assert r.code == 65
    assert r.err.strip() == "error: give files or folders to read, or pipe one message in ('-')"


# -- the admin API -------------------------------------------------------------------------------

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def _api(db: Database, make_settings: Callable[..., Any]) -> httpx.AsyncClient:
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_the_api_records_webhook_events_and_report_mails(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    # drain runs an event loop of its own, so not on this test's.
    _settings, ids = await asyncio.to_thread(_sent_edition, db, make_settings, smtp_server)
    events = {
        "events": [
            {"type": "hard", "email": "P0@example.org", "detail": "mailbox does not exist"},
            {"type": "complaint", "message_id": ids["p1@example.org"]},
            {"type": "soft", "email": "nobody@elsewhere.example"},
        ]
    }
    big_report = dsn("p2@example.org", ids["p2@example.org"], status="5.2.2") + b"x" * 40_000
    async with _api(db, make_settings) as http:
        assert (await http.post("/api/bounces", json=events)).status_code == 401
        answer = await http.post("/api/bounces", json=events, headers=AUTH)
        again = await http.post("/api/bounces", json=events, headers=AUTH)
        mail = await http.post(
            "/api/bounces/report",
            content=big_report,
            headers={**AUTH, "content-type": "message/rfc822"},
        )
        not_report = await http.post(
            "/api/bounces/report",
            content=report_file("out-of-office.eml"),
            headers={**AUTH, "content-type": "message/rfc822"},
        )
        no_address = await http.post(
            "/api/bounces", json={"events": [{"type": "hard"}]}, headers=AUTH
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "hard": 1, "soft": 1, "delayed": 0, "complaint": 1, "unsubscribe": 0, "unmatched": 1,
        "stopped": 2,
    }  # fmt: skip
    assert again.json()["stopped"] == 0
    assert mail.status_code == 200 and mail.json()["soft"] == 1
    assert not_report.status_code == 422
    assert "not a multipart/report" in not_report.json()["error"]
    assert no_address.status_code == 200 and no_address.json()["unmatched"] == 1
    assert _status_of(db, "p0@example.org")[0] == "bounced"
    assert _status_of(db, "p1@example.org")[0] == "complained"
    assert _status_of(db, "p2@example.org") == ("active", "bounced")


async def test_odd_events_are_unmatched_without_failing_the_batch_or_the_store(
    db: Database, make_settings: Callable[..., Any]
) -> None:
    with db.transaction() as session:
        subscribers.add(session, "ann@example.com", confirmed=True)
    events = {
        "events": [
            {"type": "hard", "email": '"weird local"@example.net'},
            {"type": "complaint", "message_id": "<a\u0000b@x.example>", "detail": "\u001b]0;x"},
            {"type": "hard", "email": "ann@example.com", "detail": "gone\u0000"},
            {"type": "soft"},
            {"type": "soft", "email": "x" * 400 + "@example.com", "detail": "y" * 5000},
        ]
    }
    async with _api(db, make_settings) as http:
        answer = await http.post("/api/bounces", json=events, headers=AUTH)
        big = await http.post(
            "/api/editions",
            content=b"{" + b" " * 20_000 + b"}",
            headers={**AUTH, "content-type": "application/json"},
        )

        async def chunks() -> Any:
            yield b"{"
            for _ in range(20):
                yield b" " * 1000
            yield b"}"

        chunked = await http.post(
            "/api/editions", content=chunks(), headers={**AUTH, "content-type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["unmatched"], answer.json()["stopped"]) == (4, 1)
    # Only the bounce routes take large bodies; declared or chunked, the answer is a 413.
    assert big.status_code == 413 and chunked.status_code == 413, chunked.text
    with db.transaction() as session:
        assert subscribers.get(session, "ann@example.com").status == "bounced"
