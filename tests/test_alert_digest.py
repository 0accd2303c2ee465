"""Alerts and the digest: a story a reader was alerted to is not repeated in Latest Posts, and
a story whose alert was held back from them (budget, quiet hours, too late) goes into their
next digest, marked, and into no digest after that.

Alert rows are written as the alert lane leaves them (queued, sent, held, skipped); both
stores; the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from sqlmodel import select

from digest import editions, previews, stats, subscriptions
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.models import Alert, Body, Delivery, Post, Subscriber
from digest.states import DeliveryKind, DeliveryStatus

T0 = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
READERS = ("alerted@example.com", "held@example.com", "late@example.com", "plain@example.com")


def _post(session, guid: str, *, at: datetime, categories=("World",)) -> Post:  # type: ignore[no-untyped-def]
    post = Post(
        guid=guid,
        title=f"Story {guid}",
        link=f"https://news.example.com/{guid}",
        summary=f"Summary of {guid}.",
        categories=list(categories),
        published_at=at,
        first_seen_at=at,
        updated_at=at,
    )
    session.add(post)
    session.flush()
    return post


def _alert(session, post: Post, at: datetime, states: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    """An alert of newsletter 1 about ``post``, with one row per reader in ``states``."""
    alert = Alert(
        newsletter_id=1, post_id=post.id or 0, raised_at=at, expires_at=at + timedelta(hours=3)
    )
    session.add(alert)
    session.flush()
    for email, status in states.items():
        sid = session.exec(select(Subscriber.id).where(Subscriber.email == email)).one()
        session.add(
            Delivery(
                kind=DeliveryKind.ALERT.value,
                subscriber_id=sid,
                period_key=f"1/alert:{alert.id}",
                to_email=email,
                status=status,
                message_id=f"<n{alert.id}.{sid}.0@example.com>",
                created_at=at,
                updated_at=at,
            )
        )
    session.flush()
    return int(alert.id or 0)


@pytest.fixture
def world(db: Database, settings: Settings):  # type: ignore[no-untyped-def]
    with time_machine.travel(T0 - timedelta(days=30), tick=False), db.transaction() as s:
        for email in READERS:
            subscriptions.add(s, email, timezone="UTC", send_hour=7, confirmed=True)
    with db.transaction() as s:
        # Last digest yesterday at 07:00: today's window is the last 24 hours.
        s.execute(
            sa.update(subscriptions.Subscription).values(last_digest_at=T0 - timedelta(days=1))
        )
        breaking = _post(s, "breaking", at=T0 - timedelta(hours=5))
        _post(s, "other", at=T0 - timedelta(hours=4))
        _alert(
            s,
            breaking,
            T0 - timedelta(hours=5),
            {
                "alerted@example.com": DeliveryStatus.SENT.value,
                "held@example.com": DeliveryStatus.HELD.value,
                # Queued, but not sent before its send-by time: skipped at claim.
                "late@example.com": DeliveryStatus.SKIPPED.value,
            },
        )
    return db, settings


@dataclass(frozen=True)
class Shown:
    post_ids: list[int]
    text: str
    html: str


def _bodies(db: Database) -> dict[str, Shown]:
    with db.transaction() as s:
        rows = s.exec(
            select(Delivery.to_email, Body.post_ids, Body.text, Body.html)
            .join(Body, Body.id == Delivery.body_id)
            .where(Delivery.kind == DeliveryKind.DIGEST.value)
        ).all()
        return {email: Shown(list(ids), text, html) for email, ids, text, html in rows}


def _story_ids(db: Database) -> dict[str, int]:
    with db.transaction() as s:
        return {p.guid: int(p.id or 0) for p in s.exec(select(Post))}


def test_an_alerted_story_is_not_repeated_and_a_held_one_is_carried_and_marked(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    ids = _story_ids(db)
    bodies = _bodies(db)
    assert bodies["alerted@example.com"].post_ids == [ids["other"]]
    assert bodies["plain@example.com"].post_ids == [ids["other"], ids["breaking"]]  # newest first
    for email in ("held@example.com", "late@example.com"):
        body = bodies[email]
        # First, under its own heading, then the rest.
        assert body.post_ids == [ids["breaking"], ids["other"]]
        assert "BREAKING NEWS YOU WERE NOT ALERTED TO" in body.text
        assert body.text.index("Story breaking") < body.text.index("Story other")
        assert "Breaking news you were not alerted to" in body.html
    assert "NOT ALERTED" not in bodies["plain@example.com"].text


def test_a_carried_story_is_folded_and_no_later_digest_carries_it_again(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    with db.transaction() as s:
        states = dict(
            s.execute(
                sa.select(Delivery.to_email, Delivery.status).where(
                    Delivery.kind == DeliveryKind.ALERT.value
                )
            ).all()
        )
    assert states == {
        "alerted@example.com": "sent",
        "held@example.com": "folded",
        "late@example.com": "folded",
    }
    with db.transaction() as s:
        _post(s, "tomorrow", at=T0 + timedelta(hours=20))
    editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1))
    ids = _story_ids(db)
    with db.transaction() as s:
        rows = s.exec(
            select(Delivery.to_email, Body.post_ids)
            .join(Body, Body.id == Delivery.body_id)
            .where(
                Delivery.kind == DeliveryKind.DIGEST.value,
                Delivery.period_key == "1/daily:2026-11-30",
            )
        ).all()
    assert {email: post_ids for email, post_ids in rows} == {e: [ids["tomorrow"]] for e in READERS}


def test_a_held_story_outside_the_window_and_the_readers_topics_is_still_carried(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world
    with db.transaction() as s:
        old = _post(s, "old", at=T0 - timedelta(days=40), categories=["Sport"])
        _alert(s, old, T0 - timedelta(hours=2), {"plain@example.com": DeliveryStatus.HELD.value})
        s.execute(
            sa.update(subscriptions.Subscription)
            .where(
                subscriptions.Subscription.subscriber_id
                == sa.select(Subscriber.id)
                .where(Subscriber.email == "plain@example.com")
                .scalar_subquery()
            )
            .values(topics=["World"])
        )
    editions.make_edition(db, settings, cadence="daily", now=T0)
    ids = _story_ids(db)
    assert _bodies(db)["plain@example.com"].post_ids == [ids["old"], ids["other"], ids["breaking"]]


def test_the_alert_alone_is_enough_for_a_digest(world) -> None:  # type: ignore[no-untyped-def]
    """A held reader gets a digest even when the held story is all there is."""
    db, settings = world
    with db.transaction() as s:
        s.execute(sa.delete(Post).where(Post.guid == "other"))
    editions.make_edition(db, settings, cadence="daily", now=T0)
    bodies = _bodies(db)
    assert "alerted@example.com" not in bodies  # nothing new for them: skipped
    assert bodies["held@example.com"].post_ids == [_story_ids(db)["breaking"]]


def test_the_preview_shows_a_reader_what_their_digest_will_carry(world) -> None:  # type: ignore[no-untyped-def]
    db, settings = world

    def text(address: str) -> str:
        shown = previews.preview(db, settings, address=address, cadence=None, now=T0)
        assert shown.message is not None
        return shown.message.decode()

    assert "BREAKING NEWS YOU WERE NOT ALERTED TO" in text("held@example.com")
    alerted = text("alerted@example.com")
    assert "Story breaking" not in alerted and "Story other" in alerted


def test_a_held_story_the_reader_already_had_in_a_digest_is_not_carried_again(world) -> None:  # type: ignore[no-untyped-def]
    """Published at 02:00, in today's digest; alerted at 09:00 and held back from a reader
    whose budget was spent: tomorrow's digest does not repeat it."""
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    with db.transaction() as s:
        story = s.exec(select(Post).where(Post.guid == "other")).one()
        _alert(s, story, T0 + timedelta(hours=2), {"plain@example.com": DeliveryStatus.HELD.value})
        _post(s, "next", at=T0 + timedelta(hours=5))
    editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1))
    ids = _story_ids(db)
    with db.transaction() as s:
        got = s.exec(
            select(Body.post_ids)
            .join(Delivery, Delivery.body_id == Body.id)
            .where(
                Delivery.to_email == "plain@example.com",
                Delivery.period_key == "1/daily:2026-11-30",
            )
        ).one()
    assert got == [ids["next"]]


def test_a_digest_skipped_unsent_gives_its_held_stories_back_to_the_next_one(world) -> None:  # type: ignore[no-untyped-def]
    """Workers down all day: today's digest is skipped past its send-by time, so the held
    story it was to carry waits for tomorrow's instead of being lost."""
    db, settings = world
    editions.make_edition(db, settings, cadence="daily", now=T0)
    with db.transaction() as s:
        # Claimed now (the real clock), long after the digest's send-by time (11-30 00:00).
        assert outbox.claim(s, owner="w", limit=100, lease=timedelta(minutes=5)) == []
        held = s.execute(
            sa.select(Delivery.status).where(
                Delivery.kind == DeliveryKind.ALERT.value, Delivery.to_email == "held@example.com"
            )
        ).scalar_one()
    assert held == DeliveryStatus.HELD.value
    editions.make_edition(db, settings, cadence="daily", now=T0 + timedelta(days=1, hours=2))
    ids = _story_ids(db)
    with db.transaction() as s:
        got = s.exec(
            select(Body.post_ids)
            .join(Delivery, Delivery.body_id == Body.id)
            .where(
                Delivery.to_email == "held@example.com", Delivery.period_key == "1/daily:2026-11-30"
            )
        ).one()
    assert ids["breaking"] in got


def test_an_expired_alert_stays_counted_as_expired_once_its_story_is_folded(world) -> None:  # type: ignore[no-untyped-def]
    """/metrics' counts only grow: folding an expired alert's story does not uncount it, and
    a digest skipped unsent gives each folded row back the state it had."""
    db, settings = world

    def counts() -> dict[str, int]:
        with db.transaction() as s:
            return stats.alert_counts(s)

    assert (counts()["expired"], counts()["folded"]) == (1, 0)
    editions.make_edition(db, settings, cadence="daily", now=T0)
    assert (counts()["expired"], counts()["folded"]) == (1, 2)
    with db.transaction() as s:
        # Claimed now (the real clock), long after the digest's send-by time: skipped.
        assert outbox.claim(s, owner="w", limit=100, lease=timedelta(minutes=5)) == []
        back = dict(
            s.execute(
                sa.select(Delivery.to_email, Delivery.status).where(
                    Delivery.kind == DeliveryKind.ALERT.value
                )
            ).all()
        )
    assert back["late@example.com"] == "skipped" and back["held@example.com"] == "held"
    assert (counts()["expired"], counts()["folded"]) == (1, 0)
