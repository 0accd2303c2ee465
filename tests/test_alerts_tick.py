"""Alerts raised by a feed category on the scheduler's tick: once, only while the post is news,
only in newsletters that name the category."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from digest import newsletters, schedule
from digest.config import Settings
from digest.db import Database
from digest.models_campaigns import Alert
from tests.support.alerts import alert_rows, newsletter_settings, post, readers

A = Alert.__table__  # type: ignore[attr-defined]
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def alerts(db: Database) -> list[tuple[int, int, str]]:
    with db.transaction() as session:
        rows = session.execute(sa.select(A.c.newsletter_id, A.c.post_id, A.c.source)).all()
    return sorted((r[0], r[1], r[2]) for r in rows)


async def tick(settings: Settings, db: Database, now: datetime) -> None:
    """One tick of the scheduler's digest job at ``now``."""
    await schedule.Scheduler(settings, db, clock=lambda: now, poll=False).digests_job()


async def test_a_post_in_an_alert_category_is_alerted_by_one_tick_and_only_once(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, alert_categories=["Breaking"])
    with db.transaction() as session:
        other = newsletters.add(session, "sport", name="Sport")  # names no alert category
        sport_id = int(other.id or 0)
    opted = readers(db, ["a@example.org", "b@example.org"])
    readers(db, ["fan@example.org"], newsletter_id=sport_id)
    fresh = post(
        db, "Storm hits coast", categories=["breaking"], first_seen_at=NOON - timedelta(minutes=10)
    )
    post(db, "Council meets", categories=["Politics"], first_seen_at=NOON - timedelta(minutes=5))
    post(db, "Old storm", categories=["BREAKING"], first_seen_at=NOON - timedelta(hours=4))
    await tick(settings, db, NOON)
    assert alerts(db) == [(1, fresh, "category")]
    rows = alert_rows(db)
    assert sorted(r.subscriber_id for r in rows) == opted
    assert {r.status for r in rows} == {"queued"} and {r.next_attempt_at for r in rows} == {NOON}
    # The next ticks, here or in a second scheduler, add nothing.
    await tick(settings, db, NOON + timedelta(minutes=1))
    await tick(settings, db, NOON + timedelta(minutes=2))
    assert alerts(db) == [(1, fresh, "category")]
    assert len(alert_rows(db)) == 2


async def test_a_category_post_nobody_opted_in_for_records_nothing_until_someone_does(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, alert_categories=["breaking"])
    readers(db, ["a@example.org"], alerts=False)
    pid = post(db, "Storm hits coast", categories=["Breaking"], first_seen_at=NOON)
    await tick(settings, db, NOON)
    assert alerts(db) == [] and alert_rows(db) == []
    readers(db, ["late@example.org"])  # opts in a minute later: the post is still news
    await tick(settings, db, NOON + timedelta(minutes=1))
    assert alerts(db) == [(1, pid, "category")] and len(alert_rows(db)) == 1


async def test_a_newsletter_that_offers_no_alerts_raises_none_by_category(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, alert_categories=["Breaking"], alerts=False)
    readers(db, ["a@example.org"])
    post(db, "Storm hits coast", categories=["Breaking"], first_seen_at=NOON)
    await tick(settings, db, NOON)
    assert alerts(db) == []


async def test_a_newsletter_of_some_topics_alerts_only_breaking_posts_of_them(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, alert_categories=["Breaking"], topics=["Sport"])
    readers(db, ["fan@example.org"])
    post(db, "Election called", categories=["Breaking", "Politics"], first_seen_at=NOON)
    derby = post(db, "Derby abandoned", categories=["Breaking", "sport"], first_seen_at=NOON)
    await tick(settings, db, NOON)
    assert alerts(db) == [(1, derby, "category")]
