"""POST /subscribe does the same database work for every address, known or not.

The answer was already the same for every address, but its timing was not: an active address
skipped the update and the mail and came back ~2 ms sooner, so ten probes told subscribers
apart 95 % of the time. Here the statements each request runs are captured on the engine and
must be the same, in the same order, whatever the address's state; ``bench/subscribe_timing.py``
measures the latencies themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from digest import subscribers
from digest.clock import utcnow
from digest.db import Database
from digest.subscriber_fields import Consent
from tests.support.web import HTML, client, confirm_mails, make_app

STATES = ("new", "pending", "active", "gone", "capped")


def _seed(db: Database) -> None:
    """pending@, active@, gone@ (unsubscribed) and capped@ (out of mails today) exist."""
    consent = Consent(at=utcnow(), source="test")
    with db.transaction() as session:
        subscribers.request_subscription(session, "pending@example.com", consent=consent)
        subscribers.add(session, "active@example.com", confirmed=True, name="Act")
        gone = subscribers.add(session, "gone@example.com", confirmed=True)
        subscribers.unsubscribe(session, gone)


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
                    data={"email": f"{who}@example.com", "name": "Probe", "cadence": "weekly"},
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
        active = subscribers.get(session, "active@example.com")
        assert (active.name, active.cadence) == ("Act", "daily")  # an active reader untouched
        assert subscribers.get(session, "gone@example.com").cadence == "weekly"
