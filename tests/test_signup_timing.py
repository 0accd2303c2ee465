"""POST /subscribe does the same database work for every address, known or not.

The answer was already the same for every address, but its timing was not: an active address
skipped the update and the mail and came back ~2 ms sooner, so ten probes told subscribers
apart 95 % of the time. Here the statements each request runs are captured on the engine and
must be the same, in the same order, whatever the address's state; ``bench/subscribe_timing.py``
measures the latencies themselves.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from digest import subscribers, subscription_requests, subscriptions
from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.running import drain
from digest.models import Body, Delivery
from digest.subscriber_fields import Consent
from tests.support.smtp_server import SmtpServer
from tests.support.web import HTML, client, confirm_mails, make_app

STATES = ("new", "pending", "active", "gone", "capped")
D = Delivery.__table__  # type: ignore[attr-defined]
B = Body.__table__  # type: ignore[attr-defined]


def _seed(db: Database) -> None:
    """pending@, active@, gone@ (unsubscribed) and capped@ (out of mails today) exist."""
    consent = Consent(at=utcnow(), source="test")
    with db.transaction() as session:
        subscription_requests.request_subscription(session, "pending@example.com", consent=consent)
        subscriptions.add(session, "active@example.com", confirmed=True, name="Act")
        gone = subscriptions.add(session, "gone@example.com", confirmed=True)
        subscriptions.unsubscribe(session, gone)


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    """Every statement the engine runs meanwhile, its values left out (their shape)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Savepoint names count up over a connection's life; the rest is the statement.
        seen.append(re.sub(r"sa_savepoint_\d+", "sa_savepoint_N", " ".join(statement.split())))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


async def test_every_address_costs_the_same_statements(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url, ip_limit=1000)
    _seed(db)
    app = make_app(settings, db)
    shapes: dict[str, list[str]] = {}
    answers = set()
    async with client(app) as http:
        for _ in range(settings.confirm_limit):  # capped@ uses up its mails for today
            await http.post("/subscribe", data={"email": "capped@example.com"})
        for who in STATES:
            with _statements(db) as seen:
                r = await http.post(
                    "/subscribe",
                    data={
                        "email": f"{who}@example.com",
                        "name": "Probe",
                        "cadence": "weekly",
                        "timezone": "Asia/Tokyo",
                    },
                    headers=HTML,
                )
            answers.add((r.status_code, r.text))
            shapes[who] = seen
    app.state.writer.close()
    assert len(answers) == 1
    assert any(s.startswith("INSERT INTO deliveries") for s in shapes["new"])
    for who in STATES[1:]:
        assert shapes[who] == shapes["new"], who
    # The same work, different outcomes: only those who should get a mail got one.
    sent = {who: len(confirm_mails(db, f"{who}@example.com")) for who in STATES}
    assert sent == {"new": 1, "pending": 1, "active": 0, "gone": 1, "capped": 3}
    with db.transaction() as session:
        active = subscribers.reader(session, "active@example.com")
        # An active reader untouched, their zone too.
        assert (active.name, active.cadence, active.timezone) == ("Act", "daily", "UTC")
        gone = subscribers.reader(session, "gone@example.com")
        # Someone who left gets their new cadence once they confirm; their zone is theirs to
        # change behind their own link, never by whoever types their address.
        assert (gone.cadence, gone.timezone) == ("weekly", "UTC")


def _rows(db: Database) -> tuple[list[tuple[Any, ...]], int]:
    """Every confirmation delivery (id, address, status, reason, body size) and the bodies."""
    with db.transaction() as session:
        deliveries = session.execute(
            sa.select(D.c.id, D.c.to_email, D.c.status, D.c.last_reply, sa.func.length(B.c.html))
            .join(B, B.c.id == D.c.body_id)
            .where(D.c.kind == "confirm")
            .order_by(D.c.id)
        ).all()
        bodies = session.execute(sa.select(sa.func.count()).select_from(B)).scalar_one()
    return [tuple(r) for r in deliveries], int(bodies)


async def test_every_request_writes_the_same_rows_and_only_due_mail_goes(
    db: Database, make_settings, smtp_server: SmtpServer
) -> None:
    """The rows a request leaves are its timing too (on SQLite, inserting them and writing their
    pages at commit was a measurable 0.3 ms): every request writes one body and one confirmation
    delivery, ``skipped`` with the reason when no mail is due, and only queued ones are sent."""
    settings = make_settings(database_url=db.url, ip_limit=1000, smtp_url=smtp_server.url)
    _seed(db)
    app = make_app(settings, db)
    async with client(app) as http:
        for _ in range(settings.confirm_limit):  # capped@ uses up its mails for today
            await http.post("/subscribe", data={"email": "capped@example.com"})
        before, bodies_before = _rows(db)
        for who in STATES:
            await http.post("/subscribe", data={"email": f"{who}@example.com"}, headers=HTML)
    app.state.writer.close()
    after, bodies_after = _rows(db)
    added = after[len(before) :]
    assert after[: len(before)] == before
    assert bodies_after - bodies_before == len(STATES)  # one body each, mail or not
    assert [(to, status, reason) for _, to, status, reason, _ in added] == [
        ("new@example.com", "queued", None),
        ("pending@example.com", "queued", None),
        ("active@example.com", "skipped", "already subscribed"),
        ("gone@example.com", "queued", None),
        ("capped@example.com", "skipped", "over the confirmation limit"),
    ]
    sizes = {size for *_, size in added}
    assert max(sizes) - min(sizes) < 8, sizes  # the same mail; only the link's ids differ

    report = await asyncio.to_thread(drain, settings, db)
    got = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert got == {
        "new@example.com": 1,
        "pending@example.com": 1,
        "gone@example.com": 1,
        "capped@example.com": settings.confirm_limit,
    }
    assert report.sent == sum(got.values())
    with db.transaction() as session:
        # The skipped rows stay skipped: nothing claims them, now or later.
        assert outbox.claim(session, owner="t", limit=100, lease=timedelta(minutes=1)) == []
        left = dict(
            session.execute(
                sa.select(D.c.status, sa.func.count())
                .where(D.c.kind == "confirm")
                .group_by(D.c.status)
            ).all()
        )
    assert left == {"sent": 3 + settings.confirm_limit, "skipped": 2}


async def test_skipped_requests_do_not_use_up_the_confirmation_limit(
    db: Database, make_settings
) -> None:
    """Requests past the cap are recorded, but only mails that were queued count: once a day
    has passed the address gets its mails again, however often it was asked for meanwhile."""
    settings = make_settings(database_url=db.url, ip_limit=1000)
    app = make_app(settings, db)
    async with client(app) as http:
        for _ in range(settings.confirm_limit + 5):
            await http.post("/subscribe", data={"email": "v@example.com"})
        with db.transaction() as session:
            # A day later the queued mails leave the window; the skipped ones are younger.
            session.execute(
                sa.update(D)
                .where(D.c.status == "queued")
                .values(created_at=utcnow() - timedelta(hours=25))
            )
        await http.post("/subscribe", data={"email": "v@example.com"})
    app.state.writer.close()
    assert len(confirm_mails(db, "v@example.com")) == settings.confirm_limit + 1
