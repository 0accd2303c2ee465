"""The outbox as the scheduler last counted it: the desk's Today page reads the tally of the
last minute (a few rows, whatever the outbox holds), and counts for itself, saying so, when
no scheduler has counted lately."""

from __future__ import annotations

from contextlib import aclosing
from datetime import timedelta

from digest import outbox_tally
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.models import Delivery
from digest.schedule import Scheduler
from tests.support.desk import desk_client
from tests.support.web import make_app


def _mail(db: Database, status: str, n: int = 1) -> None:
    with db.transaction() as session:
        for i in range(n):
            address = f"{status}{i}-{utcnow().timestamp()}@example.com"
            session.add(Delivery(to_email=address, status=status, message_id=f"<{address}>"))


def test_a_fresh_tally_is_read_a_stale_one_is_not(db: Database) -> None:
    _mail(db, "queued", 3)
    _mail(db, "bounced")
    now = utcnow()
    with db.transaction() as session:
        assert outbox_tally.refresh(session, now)["queued"] == 3
    _mail(db, "queued", 2)  # after the count: the tally does not know them yet
    with db.transaction() as session:
        kept = outbox_tally.current(session, now + timedelta(seconds=30))
        assert not kept.live and kept.counted_at == now
        assert kept.counts["queued"] == 3 and kept.counts["bounced"] == 1
        assert kept.counts["sent"] == 0  # every state is there
        late = outbox_tally.current(session, now + outbox_tally.FRESH + timedelta(seconds=1))
        assert late.live and late.counts["queued"] == 5
    with db.transaction() as session:
        assert outbox_tally.refresh(session, now)["queued"] == 5  # a refresh replaces it


async def test_today_shows_the_schedulers_tally_and_when_it_was_counted(
    db: Database, settings: Settings
) -> None:
    _mail(db, "deferred", 2)
    app = make_app(settings, db)
    http, _ = await desk_client(app, db, "viewer")
    async with aclosing(http):
        before = (await http.get("/desk/")).text
        assert "Counted now" in before and "<dt>deferred</dt><dd>2</dd>" in before
        await Scheduler(settings, db).leases_job()  # the minute's housekeeping counts it
        _mail(db, "deferred")
        after = (await http.get("/desk/")).text
    assert "As counted at" in after and "<dt>deferred</dt><dd>2</dd>" in after
