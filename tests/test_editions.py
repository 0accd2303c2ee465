"""Making editions from the store: due subscribers, shared bodies, no post twice, idempotence.

Runs on SQLite and PostgreSQL; the clock is passed in, so no test waits.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from sqlmodel import select

from digest import editions, schedule, subscriptions
from digest import subscribers as store
from digest.config import Settings
from digest.db import Database
from digest.models import Body, Delivery, Edition, Post, Subscription

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def _post(session, guid: str, *, at: datetime, categories=(), sticky=False) -> Post:  # type: ignore[no-untyped-def]
    post = Post(
        guid=guid,
        title=f"Story {guid}",
        link=f"https://news.example.com/{guid}",
        summary=f"Summary of {guid}.",
        categories=list(categories),
        sticky=sticky,
        published_at=at,
        first_seen_at=at,
        updated_at=at,
    )
    session.add(post)
    session.flush()
    return post


def _received(db: Database) -> dict[str, list[int]]:
    """Post ids each address has in its queued or sent digests."""
    got: dict[str, list[int]] = {}
    with db.transaction() as s:
        rows = s.exec(select(Delivery, Body).join(Body, Body.id == Delivery.body_id))
        for d, b in rows:
            got.setdefault(d.to_email, []).extend(b.post_ids)
    return got


@pytest.fixture
def world(db: Database, settings: Settings) -> tuple[Database, Settings]:
    # Readers of long standing: the scheduler holds back one who joined after their hour.
    with time_machine.travel(T0 - timedelta(days=30), tick=False), db.transaction() as s:
        subscriptions.add(
            s, "paris@example.com", timezone="Europe/Paris", send_hour=7, confirmed=True
        )
        subscriptions.add(
            s,
            "tokyo@example.com",
            timezone="Asia/Tokyo",
            send_hour=7,
            confirmed=True,
            topics="Business",
        )
        subscriptions.add(s, "weekly@example.com", cadence="weekly", confirmed=True)
        subscriptions.add(s, "pending@example.com", timezone="Europe/Paris", send_hour=7)
        _post(s, "w1", at=T0 - timedelta(hours=3), categories=["World"])
        _post(s, "b1", at=T0 - timedelta(hours=2), categories=["Business"])
        _post(s, "f1", at=T0 - timedelta(days=3), categories=["Don't Miss"])
    return db, settings


def test_only_subscribers_whose_local_hour_has_come_are_due(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    # 06:00 UTC is 07:00 in Paris and 15:00 in Tokyo: both due (Tokyo since 22:00 UTC).
    report = editions.make_edition(db, settings, cadence="daily", now=T0 - timedelta(hours=1))
    assert report is not None and report.recipients == 1  # 05:00 UTC: Tokyo only
    assert set(_received(db)) == {"tokyo@example.com"}
    report = editions.make_edition(db, settings, cadence="daily", now=T0)
    assert report is not None and report.recipients == 1  # now Paris; Tokyo already had today's
    assert set(_received(db)) == {"tokyo@example.com", "paris@example.com"}


def test_topics_featured_and_shared_bodies(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    report = editions.make_edition(db, settings, cadence="daily", now=T0, due_only=False)
    assert report is not None and (report.recipients, report.bodies) == (2, 2)
    got = _received(db)
    with db.transaction() as s:
        ids = {p.guid: p.id for p in s.exec(select(Post))}
    assert got["paris@example.com"] == [ids["f1"], ids["b1"], ids["w1"]]  # Don't Miss first
    assert got["tokyo@example.com"] == [ids["f1"], ids["b1"]]  # Business only, plus featured
    assert "pending@example.com" not in got


def test_making_the_same_edition_twice_or_at_once_adds_nothing(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    errors: list[BaseException] = []

    def make() -> None:
        try:
            editions.make_edition(db, settings, cadence="daily", now=T0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(minutes=5))
    with db.transaction() as s:
        rows = s.exec(select(Delivery)).all()
        assert sorted(d.to_email for d in rows) == ["paris@example.com", "tokyo@example.com"]
        assert len({d.message_id for d in rows}) == 2
        assert len(s.exec(select(Edition)).all()) == 1


def test_no_post_twice_and_nothing_lost_across_editions(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    with db.transaction() as s:
        _post(s, "w2", at=T0 + timedelta(hours=5), categories=["World"])  # after the 1st edition
        _post(s, "f2", at=T0 + timedelta(hours=6), categories=["Featured"])
    editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1))
    got = _received(db)
    with db.transaction() as s:
        ids = {p.guid: p.id for p in s.exec(select(Post))}
    paris = got["paris@example.com"]
    assert len(paris) == len(set(paris))  # the old featured post is not repeated
    assert paris == [ids["f1"], ids["b1"], ids["w1"], ids["f2"], ids["w2"]]
    assert got["tokyo@example.com"] == [ids["f1"], ids["b1"], ids["f2"]]


def test_nothing_new_is_a_recorded_skip_that_takes_the_period(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    report = editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1))
    assert report is not None and (report.recipients, report.skipped) == (0, 2)
    with db.transaction() as s:
        skipped = s.exec(select(Delivery).where(Delivery.status == "skipped")).all()
        assert {d.last_reply for d in skipped} == {"no new posts"}
    assert (
        editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1, hours=1))
        is None
    )


def test_unsubscribed_people_are_left_out_and_their_queued_mail_cancelled(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    with db.transaction() as s:
        subscriptions.unsubscribe(s, store.reader(s, "paris@example.com"))
        _post(s, "w3", at=T0 + timedelta(hours=2))
    editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1))
    with db.transaction() as s:
        paris = s.exec(select(Delivery).where(Delivery.to_email == "paris@example.com")).all()
    assert [d.status for d in paris] == ["cancelled"]


def test_dry_run_writes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    report = editions.make_edition(db, settings, cadence="daily", now=T0, dry_run=True)
    assert report is not None and report.recipients == 2
    with db.engine.connect() as conn:
        for table in ("deliveries", "bodies", "editions"):
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0
        assert (
            conn.execute(
                sa.select(Subscription.last_digest_at).where(
                    Subscription.last_digest_at.is_not(None)
                )
            ).all()
            == []
        )


def test_weekly_digest_goes_on_the_weekly_day(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    sunday_8am = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    monday_8am = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with db.transaction() as s:
        _post(s, "m1", at=monday_8am - timedelta(hours=1))
    report = editions.make_edition(db, settings, cadence="weekly", now=sunday_8am)
    assert report is not None  # Sunday is still in the week whose Monday 07:00 has passed
    report = editions.make_edition(db, settings, cadence="weekly", now=monday_8am)
    assert report is not None and report.recipients == 1
    with db.transaction() as s:
        keys = sorted(d.period_key for d in s.exec(select(Delivery)))
    assert keys == ["1/weekly:2026-W48", "1/weekly:2026-W49"]


def test_next_runs_tell_when_each_slot_goes_out(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    before = T0 - timedelta(hours=2)  # 04:00 UTC: Paris 05:00, Tokyo 13:00 (already due)
    with db.transaction() as s:
        runs = schedule.next_runs(s, settings, before)
    got = [(r.at, r.cadence, r.timezone) for r in runs]
    assert got == [
        (before, "daily", "Asia/Tokyo"),  # due now: its hour has passed and it has no digest
        (before, "weekly", "UTC"),  # this week's Monday 07:00 has passed, no digest yet
        (datetime(2026, 11, 29, 6, 0, tzinfo=UTC), "daily", "Europe/Paris"),
    ]
    editions.make_edition(db, settings, cadence="daily", now=before)  # Tokyo gets today's
    with db.transaction() as s:
        tokyo = [
            r.at for r in schedule.next_runs(s, settings, before) if r.timezone == "Asia/Tokyo"
        ]
    assert tokyo == [datetime(2026, 11, 29, 22, 0, tzinfo=UTC)]  # tomorrow 07:00 in Tokyo
