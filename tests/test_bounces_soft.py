"""Soft bounces in a row: refusals at SMTP time and reports that come back later stop a reader
after the limit, and only the address they were about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from digest import subscribers, suppressions
from digest.db import Database
from digest.delivery.bounces import record_reports
from digest.delivery.dsn import parse_report
from digest.delivery.running import drain
from tests.support.bounces import dsn, sent_edition
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server


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
                seen.append(subscribers.reader(session, "p1@example.org").status)
    finally:
        server.stop()
    assert seen == ["active", "active", "bounced" if stopped else "active"]
    with db.transaction() as session:
        assert subscribers.reader(session, "p0@example.org").status == "active"
        assert suppressions.is_suppressed(session, "p1@example.org") == stopped


def test_soft_bounces_of_an_old_address_do_not_stop_the_new_one(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, ids = sent_edition(db, make_settings, smtp_server, soft_bounce_limit=1)
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
        assert subscribers.reader(session, "p1-new@example.org").status == "active"
        assert not suppressions.is_suppressed(session, "p1-new@example.org")


def test_soft_bounce_reports_count_in_a_row_and_a_delivered_digest_breaks_the_row(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    settings, _ids = sent_edition(db, make_settings, smtp_server, soft_bounce_limit=2)
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
        assert subscribers.reader(session, "p0@example.org").status == "active"
        assert subscribers.reader(session, "p1@example.org").status == "bounced"
