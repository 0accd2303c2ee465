"""The webhook sender shares itself out: a receiver that never answers, or a backlog of one
webhook, holds up no other webhook's events; one that is down is not tried event by event; and
a round never outlasts its leases, so a second sender repeats nothing. Real receivers on
loopback, both stores."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from digest import webhook_events, webhooks
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.models_engagement import WebhookDelivery
from digest.webhook_queue import PER_WEBHOOK
from digest.webhook_sender import WebhookSender
from tests.support.webhook_receiver import Receiver, webhook_receiver

WD = WebhookDelivery.__table__  # type: ignore[attr-defined]


@pytest.fixture
def hooks_settings(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, allow_private_webhooks=True, webhook_timeout=2.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


@pytest.fixture
def silent() -> Iterator[str]:
    """A receiver that takes the connection and never answers."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(200)
    try:
        yield f"http://127.0.0.1:{hole.getsockname()[1]}/hook"
    finally:
        hole.close()


def _add(db: Database, settings: Settings, url: str, events: str) -> int:
    with db.transaction() as session:
        row, _ = webhooks.add(session, settings, url, events)
        return int(row.id or 0)


def test_a_silent_receiver_with_a_backlog_holds_up_no_other_webhook(
    db: Database, hooks_settings: Settings, receiver: Receiver, silent: str
) -> None:
    stuck = _add(db, hooks_settings, silent, "subscriber.confirmed")
    with db.transaction() as session:  # an import: many events, all older than the next one
        webhook_events.emit_many(session, "subscriber.confirmed", [{"n": i} for i in range(60)])
    _add(db, hooks_settings, receiver.url, "edition.sent")
    with db.transaction() as session:
        webhook_events.emit(session, "edition.sent", {"edition_id": 1})
    start = utcnow()
    sender = WebhookSender(hooks_settings, db)

    async def rounds() -> tuple[int, int, int]:
        try:
            first = await sender.send_due()
            arrived = len(receiver.got)
            return first, arrived, await sender.send_due()
        finally:
            await sender.close()

    first, arrived, second = asyncio.run(rounds())
    # The first round already took the other webhook's one event.
    assert arrived == 1 and receiver.events()[0]["type"] == "edition.sent"
    # The silent one was tried a few times, not 60: the rest wait for the same next try
    # (untried, same ids), so the next round finds nothing due.
    assert first <= PER_WEBHOOK + 1 and second == 0
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(WD).where(WD.c.webhook_id == stuck)).all()
    assert len(rows) == 60 and {r.status for r in rows} == {"pending"}
    assert 1 <= sum(r.attempts for r in rows) <= PER_WEBHOOK
    assert all(r.next_attempt_at.replace(tzinfo=start.tzinfo) > start for r in rows)


def test_a_round_outlasts_no_lease_so_a_second_sender_repeats_nothing(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    receiver.delay = 0.8  # each POST takes that long; 50 at 10 at a time would take 4 s
    settings = hooks_settings.model_copy(update={"webhook_timeout": 2.0})
    _add(db, settings, receiver.url, "edition.sent")
    with db.transaction() as session:
        webhook_events.emit_many(session, "edition.sent", [{"n": i} for i in range(50)])
    other = Database(db.url)
    # Twice and more the timeout, as in production (3x): a busy machine's slow POST still ends
    # well within its lease.
    lease = timedelta(seconds=6)

    async def two_senders() -> None:
        first = WebhookSender(settings, db, lease=lease)
        second = WebhookSender(settings, other, lease=lease)

        async def later() -> int:
            await asyncio.sleep(6.2)  # the first sender's leases have run out
            return await second.send_due()

        try:
            await asyncio.gather(first.send_due(), later())
        finally:
            await first.close()
            await second.close()

    try:
        asyncio.run(two_senders())
    finally:
        other.dispose()
    times = Counter(e["id"] for e in receiver.events())
    assert times and max(times.values()) == 1
    with db.engine.connect() as conn:
        delivered = conn.execute(
            sa.select(sa.func.count()).select_from(WD).where(WD.c.status == "delivered")
        ).scalar()
    assert delivered == len(times)
