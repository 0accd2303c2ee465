"""Bounce reports for tests: the samples in ``tests/bounces/``, reports made from them, and an
edition really sent through aiosmtpd so that the reports quote Message-IDs the outbox made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from digest import subscribers
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from digest.models import Delivery
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.smtp_server import SmtpServer

REPORTS = Path(__file__).parents[1] / "bounces"
D = Delivery.__table__  # type: ignore[attr-defined]


def report_file(name: str) -> bytes:
    """The raw bytes of the sample report ``name``."""
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


def verp_dsn(recipient: str, returned_to: str, *, status: str = "5.1.1") -> bytes:
    """A delivery status notification for one recipient that quotes no Message-ID, mailed back
    to ``returned_to`` (its To, Postfix's X-Postfix-Sender and the quoted Return-Path)."""
    raw = dsn(recipient, "<unused@news.example>", status=status)
    back = returned_to.encode()
    for old, new in (
        (b"Message-ID: <unused@news.example>\n", b""),
        (b"\nTo: digest@news.example\n", b"\nTo: " + back + b"\n"),
        (b"X-Postfix-Sender: rfc822; digest@news.example", b"X-Postfix-Sender: rfc822; " + back),
        (b"Return-Path: <digest@news.example>", b"Return-Path: <" + back + b">"),
    ):
        assert raw.count(old) == 1, old
        raw = raw.replace(old, new)
    return raw


def complaint(address: str, message_id: str) -> bytes:
    """A feedback-loop complaint about ``address``, quoting ``message_id``."""
    return (
        report_file("arf-abuse.eml")
        .replace(b"<ann@example.com>", f"<{address}>".encode())
        .replace(b"<e1.1@news.example>", message_id.encode())
    )


def sent_edition(
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


def status_of(db: Database, email: str) -> tuple[str, str]:
    """(subscriber status, their delivery's status)."""
    with db.transaction() as session:
        person = subscribers.reader(session, email)
        row = session.execute(sa.select(D.c.status).where(D.c.subscriber_id == person.id))
        return person.status, row.scalar_one()
