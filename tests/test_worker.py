"""The worker end to end: a real store, a real (misbehaving) SMTP server, every outcome kept."""

from __future__ import annotations

import asyncio
import email
import re
import time
from collections.abc import Callable
from datetime import timedelta
from email import policy
from typing import Any

import sqlalchemy as sa

from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.running import drain, transport_from_settings
from digest.delivery.store import SqlStore
from digest.delivery.throttle import Breaker
from digest.delivery.worker import Worker
from digest.mail.content import MailContent
from digest.models import Delivery, Subscriber, Subscription
from tests.support.outbox import add_subscribers, enqueue, insert_readers, make_edition, status_of
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server

D = Delivery.__table__


def rows(db: Database) -> list[Any]:
    with db.transaction() as session:
        return list(session.execute(sa.select(D)).all())


def time_passes(db: Database) -> None:
    """Make every deferred row due now, as if its retry time had come."""
    with db.transaction() as session:
        session.execute(
            sa.update(D)
            .where(D.c.status == "deferred")
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def test_every_message_ends_sent_bounced_or_failed_despite_faults(
    db: Database, make_settings: Callable[..., Any], faulty_smtp_server: Callable[..., SmtpServer]
) -> None:
    server = faulty_smtp_server(
        rcpt_faults=0.12,
        data_faults=0.12,
        drop_rate=0.04,
        drop_after_accept_rate=0.02,
        stall_rate=0.01,
        stall_seconds=4.0,
        seed=7,
    )
    # A stall outlasts the timeout; an ordinary reply must not: a reply to DATA that comes
    # after the timeout is a message taken but not marked sent, a repeat the server's fault
    # counts do not explain. Hence a timeout a loaded machine never reaches by accident.
    settings = make_settings(
        database_url=db.url, smtp_url=server.url, smtp_connections=4, smtp_timeout=3.0
    )
    add_subscribers(db, 240)
    with db.transaction() as session:
        insert_readers(session, [{"email": f"unknown{i}@example.org"} for i in range(6)])
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == 246
    for _ in range(40):
        drain(settings, db)
        if not any(r.status in ("queued", "deferred", "sending") for r in rows(db)):
            break
        time_passes(db)
    final = rows(db)
    assert {r.status for r in final} <= {"sent", "bounced"}
    assert all(r.last_reply for r in final)
    sent = {r.message_id for r in final if r.status == "sent"}
    bounced = [r for r in final if r.status == "bounced"]
    received = server.handler.message_ids()
    # Nothing lost: every sent row arrived. What arrived beyond that, and every repeat, comes
    # from the server taking a message and then dropping the line before it said so (the
    # retry may then even bounce): the in-flight rule, nothing else.
    accepted_then_dropped = server.handler.faults["drop after accept"]  # type: ignore[attr-defined]
    assert sent <= set(received)
    assert len(set(received) - sent) <= accepted_then_dropped
    repeats = sum(n - 1 for n in received.values())
    assert repeats + len(set(received) - sent) <= accepted_then_dropped
    assert {r.to_email for r in bounced if "unknown" in r.to_email} == {
        f"unknown{i}@example.org" for i in range(6)
    }
    with db.transaction() as session:
        gone = (
            session.execute(
                sa.select(Subscription.status)
                .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
                .where(Subscriber.email.like("unknown%"))
            )
            .scalars()
            .all()
        )
    assert set(gone) == {"bounced"}
    # A 5xx that is not about the address bounces the message but keeps the subscriber.
    soft = [r for r in bounced if "unknown" not in r.to_email]
    with db.transaction() as session:
        for r in soft:
            assert status_of(session, r.subscriber_id) == "active"


def test_the_message_carries_personal_links_and_list_headers(
    sqlite_db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings = make_settings(database_url=sqlite_db.url, smtp_url=smtp_server.url)
    add_subscribers(sqlite_db, 1)
    edition_id, body_id = make_edition(sqlite_db)
    enqueue(sqlite_db, edition_id, body_id)
    with sqlite_db.transaction() as session:
        outbox.enqueue_transactional(
            session,
            kind="confirm",
            to_email="new@example.org",
            subscriber_id=None,
            mail=MailContent("Please confirm", "Click", "<p>Click</p>"),
            domain="example.org",
        )
    report = drain(settings, sqlite_db)
    assert report.sent == 2
    by_to = {r.rcpt_tos[0]: r for r in smtp_server.handler.received}
    digest = email.message_from_bytes(by_to["p0@example.org"].data, policy=policy.default)
    assert re.fullmatch(r"<e1\.1\.[0-9a-f]{16}@example\.org>", digest["Message-ID"])
    assert digest["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/unsubscribe/")
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hi P 0" in digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    confirm = email.message_from_bytes(by_to["new@example.org"].data, policy=policy.default)
    assert confirm["List-Unsubscribe"] is None and confirm["Subject"] == "Please confirm"


def test_deferred_mail_fails_once_the_retry_deadline_passes(
    sqlite_db: Database,
    make_settings: Callable[..., Any],
    faulty_smtp_server: Callable[..., SmtpServer],
) -> None:
    class Busy(RecordingHandler):
        async def handle_RCPT(self, *args: Any) -> str:
            return "451 4.7.1 Greylisted, try again later"

    server = start_server(Busy())
    try:
        settings = make_settings(
            database_url=sqlite_db.url, smtp_url=server.url, retry_deadline_hours=0.0001
        )  # 0.36 s
        add_subscribers(sqlite_db, 3)
        edition_id, body_id = make_edition(sqlite_db)
        enqueue(sqlite_db, edition_id, body_id)
        drain(settings, sqlite_db)
        first = rows(sqlite_db)
        assert {r.status for r in first} <= {"deferred", "failed"}
        # Until the 0.36 s deadline has passed by the clock: a count of rounds would depend on
        # how fast each one is.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(r.status == "failed" for r in rows(sqlite_db)):
                break
            time_passes(sqlite_db)
            drain(settings, sqlite_db)
        final = rows(sqlite_db)
        assert {r.status for r in final} == {"failed"}
        assert all("Greylisted" in r.last_reply and "gave up" in r.last_reply for r in final)
    finally:
        server.stop()


def test_a_failing_server_trips_the_breaker_instead_of_burning_the_queue(
    sqlite_db: Database, make_settings: Callable[..., Any]
) -> None:
    class Down(RecordingHandler):
        async def handle_DATA(self, *args: Any) -> str:
            return "451 4.3.0 Local error, try later"

    server = start_server(Down())
    try:
        settings = make_settings(
            database_url=sqlite_db.url, smtp_url=server.url, smtp_connections=2
        )
        add_subscribers(sqlite_db, 200)
        edition_id, body_id = make_edition(sqlite_db)
        enqueue(sqlite_db, edition_id, body_id)
        breaker = Breaker(threshold=5, cooldown=60)

        async def run() -> None:
            stop = asyncio.Event()
            store = SqlStore(sqlite_db, owner="w1", lease=timedelta(minutes=5))
            transport = transport_from_settings(settings)
            worker = Worker(settings, store, transport, batch_size=50, breaker=breaker)
            task = asyncio.ensure_future(worker.run(stop))
            while not breaker.trips:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the worker hands the rest back, then pauses
            stop.set()
            await task
            await transport.close()

        asyncio.run(run())
    finally:
        server.stop()
    final = rows(sqlite_db)
    tried = [r for r in final if r.attempts > 0]
    # At most the threshold plus what was already on the wire when it tripped.
    assert 5 <= len(tried) <= 5 + 2
    assert all(r.status == "deferred" for r in tried)
    assert sum(r.status == "queued" and r.attempts == 0 for r in final) == 200 - len(tried)
    assert not any(r.status == "sending" for r in final)


def test_a_drain_against_a_failing_server_returns_instead_of_waiting(
    sqlite_db: Database, make_settings: Callable[..., Any]
) -> None:
    class Down(RecordingHandler):
        async def handle_RCPT(self, *args: Any) -> str:
            return "421 4.3.2 System shutting down"

    server = start_server(Down())
    try:
        settings = make_settings(
            database_url=sqlite_db.url, smtp_url=server.url, smtp_connections=2
        )
        add_subscribers(sqlite_db, 300)
        edition_id, body_id = make_edition(sqlite_db)
        enqueue(sqlite_db, edition_id, body_id)
        report = drain(settings, sqlite_db)
    finally:
        server.stop()
    assert report.sent == 0 and 20 <= report.deferred <= 22
    final = rows(sqlite_db)
    assert sum(r.status == "queued" for r in final) == 300 - report.deferred
    assert all(r.last_reply.startswith("421") for r in final if r.status == "deferred")


def test_file_transport_writes_one_eml_per_message_and_a_repeat_overwrites(
    sqlite_db: Database, make_settings: Callable[..., Any], tmp_path: Any
) -> None:
    folder = tmp_path / "mail"
    settings = make_settings(database_url=sqlite_db.url, smtp_url=f"file:{folder}")
    add_subscribers(sqlite_db, 5)
    edition_id, body_id = make_edition(sqlite_db)
    enqueue(sqlite_db, edition_id, body_id)
    assert drain(settings, sqlite_db).sent == 5
    # as if a crash had lost the marks: everything goes again, under the same names
    with sqlite_db.transaction() as session:
        session.execute(sa.update(D).values(status="queued"))
    assert drain(settings, sqlite_db).sent == 5
    files = sorted(p.name for p in folder.iterdir())
    assert [re.sub(r"\.[0-9a-f]{16}@", "@", f) for f in files] == [
        f"e1.{i}@example.org.eml" for i in range(1, 6)
    ]
    parsed = email.message_from_bytes((folder / files[0]).read_bytes(), policy=policy.default)
    assert parsed["To"] == "P 0 <p0@example.org>"


def _queue_confirmations(db: Database, *addresses: str) -> None:
    with db.transaction() as session:
        for address in addresses:
            outbox.enqueue_transactional(
                session, kind="confirm", to_email=address, subscriber_id=None,
                mail=MailContent("Please confirm", "Click", "<p>Click</p>"), domain="example.org",
            )  # fmt: skip


def test_an_internationalised_domain_goes_out_idna_encoded(
    sqlite_db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    """ann@bücher.example is accepted at subscribe time, so it must be deliverable too."""
    settings = make_settings(database_url=sqlite_db.url, smtp_url=smtp_server.url)
    _queue_confirmations(sqlite_db, "ann@bücher.example")
    assert drain(settings, sqlite_db).sent == 1
    (received,) = smtp_server.handler.received
    assert received.rcpt_tos == ("ann@xn--bcher-kva.example",)
    assert "SMTPUTF8" not in received.mail_options  # an ASCII envelope stays plain


def test_mail_leaves_from_the_return_path_where_bounce_reports_should_go(
    sqlite_db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings = make_settings(
        database_url=sqlite_db.url,
        smtp_url=smtp_server.url,
        from_="The Daily Brief <news@news.example>",
        return_path="bounces@news.example",
    )
    _queue_confirmations(sqlite_db, "ann@example.org")
    assert drain(settings, sqlite_db).sent == 1
    (received,) = smtp_server.handler.received
    assert received.mail_from == "bounces@news.example"
    assert b"From: The Daily Brief <news@news.example>" in received.data


def _send_to(
    db: Database, make_settings: Callable[..., Any], *addresses: str, smtputf8: bool
) -> tuple[Any, RecordingHandler]:
    """Confirmations to ``addresses`` through a server that does or does not offer SMTPUTF8."""
    server = start_server(RecordingHandler(), enable_SMTPUTF8=smtputf8)
    try:
        settings = make_settings(database_url=db.url, smtp_url=server.url)
        _queue_confirmations(db, *addresses)
        return drain(settings, db), server.handler
    finally:
        server.stop()


def test_a_non_ascii_local_part_goes_out_with_smtputf8_when_the_server_offers_it(
    sqlite_db: Database, make_settings: Callable[..., Any]
) -> None:
    report, handler = _send_to(
        sqlite_db, make_settings, "josé@bücher.example", "ann@example.org", smtputf8=True
    )
    assert (report.sent, report.failed) == (2, 0)
    by_rcpt = {r.rcpt_tos: r for r in handler.received}
    jose = by_rcpt[("josé@xn--bcher-kva.example",)]
    assert "SMTPUTF8" in jose.mail_options
    assert "BODY=8BITMIME" in jose.mail_options
    parsed = email.message_from_string(jose.data.decode("utf-8"), policy=policy.SMTPUTF8)
    assert parsed["To"].addresses[0].username == "josé"
    assert "SMTPUTF8" not in by_rcpt[("ann@example.org",)].mail_options


def test_a_non_ascii_local_part_fails_plainly_on_a_server_without_smtputf8(
    sqlite_db: Database, make_settings: Callable[..., Any]
) -> None:
    report, handler = _send_to(
        sqlite_db, make_settings, "josé@example.org", "ann@example.org", smtputf8=False
    )
    assert (report.sent, report.failed) == (1, 1)
    assert [r.rcpt_tos for r in handler.received] == [("ann@example.org",)]
    with sqlite_db.transaction() as session:
        failed = session.exec(sa.select(Delivery.last_reply).where(Delivery.status == "failed"))
        assert "does not offer SMTPUTF8" in str(failed.scalar_one())
