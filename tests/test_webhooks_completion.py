"""``edition.sent`` and ``alert.sent``: once every delivery is final, reported once with counts,
however many processes check; a drain (``digest send``, ``worker --until-empty``) sends the mail,
completes the edition and delivers its event in one run. Both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from digest import announcements, completion, schedule, subscriptions, webhooks
from digest.alerts import raise_alert
from digest.announcement_rules import audience
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from digest.models import Delivery, Edition
from digest.models_campaigns import Alert, Announcement
from digest.models_engagement import WebhookDelivery
from digest.posts import store
from tests.support.alerts import newsletter_settings, post, readers
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.webhook_receiver import Receiver, webhook_receiver

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
WD = WebhookDelivery.__table__  # type: ignore[attr-defined]
DAY = datetime(2026, 6, 10, tzinfo=UTC)


@pytest.fixture
def hooks_settings(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, allow_private_webhooks=True)


@pytest.fixture
def receiver(db: Database, hooks_settings: Settings) -> Iterator[Receiver]:
    with webhook_receiver() as r:
        with db.transaction() as session:
            webhooks.add(session, hooks_settings, r.url, "edition.sent,alert.sent")
        yield r


def test_a_drained_edition_is_reported_once_with_its_counts(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    add_subscribers(db, 3)
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == 3
    with db.transaction() as session:  # one reader left before it went: cancelled
        session.execute(
            sa.update(D).where(D.c.to_email == "p2@example.org").values(status="cancelled")
        )
    report = drain(hooks_settings, db)
    assert report.sent == 2
    (got,) = receiver.wait_for(1)
    event = got.event
    assert event["type"] == "edition.sent"
    data = event["data"]
    assert data["edition_id"] == edition_id and data["newsletter"] == "digest"
    assert data["counts"]["sent"] == 2 and data["counts"]["cancelled"] == 1
    assert data["counts"]["bounced"] == 0 and "queued" not in data["counts"]
    # Checked again, from any number of processes: never reported twice.
    with db.transaction() as session:
        assert completion.complete_due(session, utcnow()) == (0, 0)
    drain(hooks_settings, db)
    assert len(receiver.got) == 1
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(E.c.completed_at)).scalar_one() is not None


def test_an_edition_with_mail_still_to_go_is_not_complete(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    add_subscribers(db, 2)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        session.execute(
            sa.update(D).where(D.c.to_email == "p0@example.org").values(status="deferred")
        )
        session.execute(sa.update(D).where(D.c.to_email == "p1@example.org").values(status="sent"))
        assert completion.complete_due(session, utcnow()) == (0, 0)
        session.execute(sa.update(D).values(status="failed").where(D.c.status == "deferred"))
        assert completion.complete_due(session, utcnow()) == (1, 0)
        assert completion.complete_due(session, utcnow()) == (0, 0)


def test_two_checkers_report_an_edition_once(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    add_subscribers(db, 1)
    enqueue(db, *make_edition(db))
    with db.transaction() as session:
        session.execute(sa.update(D).values(status="sent"))
    other = Database(db.url)
    try:
        with db.transaction() as first:
            first_done = completion.complete_due(first, utcnow())
        with other.transaction() as second:
            second_done = completion.complete_due(second, utcnow())
    finally:
        other.dispose()
    assert (first_done, second_done) == ((1, 0), (0, 0))
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar() == 1


def test_an_alert_is_reported_when_its_mail_is_done(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    readers(db, ["a@example.org", "b@example.org"])
    newsletter_settings(db, quiet_hours="off")  # the test may run at night
    alert = raise_alert(db, hooks_settings, str(post(db)), now=utcnow())
    drain(hooks_settings, db)
    (got,) = receiver.wait_for(1)
    assert got.event["type"] == "alert.sent"
    data = got.event["data"]
    assert data["alert_id"] == alert.alert_id and data["counts"]["sent"] == 2
    with db.engine.connect() as conn:
        completed = conn.execute(sa.select(Alert.__table__.c.completed_at)).scalar_one()  # type: ignore[attr-defined]
    assert completed is not None


def test_an_announcement_is_marked_done_without_an_event(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    for email in ("a@example.org", "b@example.org"):
        with db.transaction() as session:
            subscriptions.add(session, email, confirmed=True)
    with db.transaction() as session:
        draft = announcements.Draft("Podcast", "Listen **now**.", None, audience(0))
        ident = int(announcements.create(session, None, draft).id or 0)
        announcements.send(session, hooks_settings, ident, utcnow())
    with db.transaction() as session:
        assert completion.complete_due(session, utcnow()) == (0, 0)
        assert session.get(Announcement, ident).completed_at is None  # type: ignore[union-attr]
    drain(hooks_settings, db)
    with db.transaction() as session:
        assert session.get(Announcement, ident).completed_at is not None  # type: ignore[union-attr]
    assert receiver.got == []  # the contract has no announcement event


def _two_zones_one_hour(db: Database, settings: Settings, *, news: bool) -> list[tuple[int, int]]:
    """Readers at 07:00 in Dhaka (+6, 01:00 UTC) and Kolkata (+5:30, 01:30 UTC): one edition
    key for both. The scheduler ticks every 5 minutes of that hour, the worker sends at once
    and completion is checked at every tick; what each check completed."""
    with time_machine.travel(DAY - timedelta(days=1), tick=False), db.transaction() as s:
        for email, zone in (
            ("dhaka@example.org", "Asia/Dhaka"),
            ("in@example.org", "Asia/Kolkata"),
        ):
            subscriptions.add(s, email, timezone=zone, send_hour=7, cadence="daily", confirmed=True)
    if news:
        with time_machine.travel(DAY, tick=False), db.transaction() as s:
            store.add_post(s, title="story", url="https://news.example/story")
    done = []
    for minute in range(0, 60, 5):
        now = DAY + timedelta(hours=1, minutes=minute)
        with time_machine.travel(now, tick=False):
            schedule.run_digests(db, settings, now)
            with db.transaction() as s:
                s.execute(sa.update(D).where(D.c.status == "queued").values(status="sent"))
            with db.transaction() as s:
                done.append(completion.complete_due(s, now))
    return done


def _events(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(WD.c.body).order_by(WD.c.id)).scalars())


def test_an_hour_edition_is_reported_once_every_zone_of_it_has_joined(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    during = _two_zones_one_hour(db, hooks_settings, news=True)
    assert set(during) == {(0, 0)} and _events(db) == []
    with db.engine.connect() as conn:
        (edition_id,) = conn.execute(sa.select(E.c.id)).scalars()
        assert conn.execute(sa.select(sa.func.count()).select_from(D)).scalar() == 2
    # Its hour is over, and a tick's margin: no later tick can add to it.
    with db.transaction() as s:
        assert completion.complete_due(s, DAY + timedelta(hours=2, minutes=14)) == (0, 0)
    with db.transaction() as s:
        assert completion.complete_due(s, DAY + timedelta(hours=2, minutes=15)) == (1, 0)
    (body,) = _events(db)
    event = json.loads(body)
    assert event["type"] == "edition.sent" and event["data"]["edition_id"] == edition_id
    assert event["data"]["counts"]["sent"] == 2


def test_an_edition_of_nothing_but_skips_is_done_without_an_event(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _two_zones_one_hour(db, hooks_settings, news=False)  # no news: both rows skipped
    with db.engine.connect() as conn:
        statuses = conn.execute(sa.select(D.c.status)).scalars().all()
    assert statuses == ["skipped", "skipped"]
    with db.transaction() as s:
        assert completion.complete_due(s, DAY + timedelta(hours=3)) == (0, 0)
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(E.c.completed_at)).scalar_one() is not None
    with db.transaction() as s:
        assert completion.complete_due(s, DAY + timedelta(hours=4)) == (0, 0)
    assert _events(db) == []


def test_an_alert_held_back_from_everyone_is_done_without_an_event(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    readers(db, ["a@example.org", "b@example.org"])
    newsletter_settings(db, quiet_hours="off", alert_budget=0)  # budget used up: all held
    alert = raise_alert(db, hooks_settings, str(post(db)), now=utcnow())
    assert alert.queued == 0 and alert.held_budget == 2
    with db.transaction() as session:
        assert completion.complete_due(session, utcnow()) == (0, 0)
        assert session.get(Alert, alert.alert_id).completed_at is not None  # type: ignore[union-attr]
    assert _events(db) == []
