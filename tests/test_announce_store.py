"""Announcements in the store, on SQLite and PostgreSQL: who an audience takes, the refusals,
queuing once per reader, cancelling, the local-hour schedule driven by explicit ticks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from sqlmodel import select

from digest import (
    announcement_audience,
    announcement_store,
    announcements,
    newsletters,
    subscribers,
    subscriptions,
)
from digest.announcement_rules import Audience, audience
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.errors import (
    AnnouncementClosed,
    EmptyAudience,
    InvalidInput,
    NewsletterArchived,
    ScheduleInPast,
    TemplateProblem,
)
from digest.models import Body, Delivery, Subscription
from digest.states import DeliveryStatus

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
U = Subscription.__table__  # type: ignore[attr-defined]


def _reader(db: Database, email: str, when: datetime = T0 - timedelta(days=30), **fields) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(when, tick=False), db.transaction() as session:
        subscriptions.add(session, email, confirmed=True, **fields)


def _draft(
    subject: str = "Our new podcast", body: str = "Listen **now**.", **narrow
) -> announcements.Draft:  # type: ignore[no-untyped-def]
    return announcements.Draft(subject, body, None, audience(0, **narrow))


def _create(db: Database, **narrow) -> int:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        return int(announcements.create(session, None, _draft(**narrow)).id or 0)


def _rows(db: Database) -> list[Delivery]:
    with db.transaction() as session:
        return list(session.exec(select(Delivery).order_by(Delivery.to_email)).all())


def _emails(db: Database, wanted: Audience) -> list[str]:
    with db.transaction() as session:
        return announcement_audience.sample(session, wanted, limit=100)


def test_the_audience_narrows_by_topics_cadence_joined_dates_and_addresses(db: Database) -> None:
    _reader(db, "any@example.com")  # no topics: every topic
    _reader(db, "sport@example.com", topics="Sport")
    _reader(db, "food@example.com", topics="food,travel", cadence="weekly")
    _reader(db, "new@example.com", when=T0 - timedelta(days=2), topics="sport")
    with db.transaction() as session:
        subscriptions.add(session, "pending@example.com")  # never confirmed: not a reader
    everyone = ["any@example.com", "food@example.com", "new@example.com", "sport@example.com"]
    assert _emails(db, audience(1)) == everyone
    assert _emails(db, audience(1, topics="sport")) == [
        "any@example.com",
        "new@example.com",
        "sport@example.com",
    ]
    assert _emails(db, audience(1, topics="travel,music")) == [
        "any@example.com",
        "food@example.com",
    ]
    assert _emails(db, audience(1, cadence="weekly")) == ["food@example.com"]
    recent = audience(1, joined_after=(T0 - timedelta(days=7)).date())
    assert _emails(db, recent) == ["new@example.com"]
    older = audience(1, joined_before=(T0 - timedelta(days=7)).date())
    assert _emails(db, older) == ["any@example.com", "food@example.com", "sport@example.com"]
    listed = audience(1, addresses=["food@example.com", "pending@example.com", "x@example.com"])
    assert _emails(db, listed) == ["food@example.com"]


def test_bad_announcements_are_refused_with_a_reason(db: Database) -> None:
    _reader(db, "reader@example.com", topics="sport")
    with db.transaction() as session, pytest.raises(InvalidInput, match="subject"):
        announcements.create(session, None, _draft(subject="  "))
    with db.transaction() as session, pytest.raises(InvalidInput, match="empty"):
        announcements.create(session, None, _draft(body="\n \n"))
    with db.transaction() as session, pytest.raises(EmptyAudience, match="no active reader"):
        announcements.create(session, None, _draft(addresses=["stranger@example.com"]))
    with db.transaction() as session:
        newsletters.add(session, "old", name="Old news")
    with db.transaction() as session:
        newsletters.archive(session, newsletters.get(session, "old"))
    with db.transaction() as session, pytest.raises(NewsletterArchived, match="archived"):
        announcements.create(session, "old", _draft())
    with db.transaction() as session:
        assert announcements.listed(session) == []


def test_send_queues_one_copy_per_reader_however_often_it_runs(
    db: Database, settings: Settings
) -> None:
    for email in ("a@example.com", "b@example.com"):
        _reader(db, email)
    ident = _create(db)
    with db.transaction() as session:
        first = announcements.send(session, settings, ident, T0)
    with db.transaction() as session:
        again = announcements.send(session, settings, ident, T0)
    assert (first.added, first.recipients, first.status) == (2, 2, "queued")
    assert (again.added, again.recipients) == (0, 2)
    rows = _rows(db)
    assert [(r.to_email, r.kind, r.period_key, r.edition_id) for r in rows] == [
        ("a@example.com", "announcement", f"1/a:{ident}", None),
        ("b@example.com", "announcement", f"1/a:{ident}", None),
    ]
    assert all(r.message_id.startswith(f"<a{ident}.") for r in rows)
    assert len({r.body_id for r in rows}) == 1  # one shared body
    with db.transaction() as session:
        shown = announcements.summary(session, announcements.get(session, ident))
    assert shown["deliveries"] == {"queued": 2} and shown["recipients"] == 2


def test_an_announcement_takes_no_digest_key_and_erasing_a_reader_keeps_the_body(
    db: Database, settings: Settings
) -> None:
    for email in ("a@example.com", "b@example.com"):
        _reader(db, email)
    ident = _create(db)
    with db.transaction() as session:
        announcements.send(session, settings, ident, T0)
    assert not [r for r in _rows(db) if "daily" in (r.period_key or "")]
    with db.transaction() as session:
        subscribers.erase(session, "a@example.com")
    (left,) = _rows(db)
    assert left.to_email == "b@example.com" and left.body_id is not None
    with db.transaction() as session:
        assert session.get(Body, left.body_id) is not None


def test_readers_who_leave_before_it_goes_are_not_mailed(db: Database, settings: Settings) -> None:
    for email in ("stays@example.com", "leaves@example.com", "raced@example.com"):
        _reader(db, email)
    ident = _create(db)
    with db.transaction() as session:
        announcements.send(session, settings, ident, T0)
    with db.transaction() as session:
        subscriptions.unsubscribe(session, subscribers.get(session, "leaves@example.com"))
        # Left in a way that did not touch the outbox (a race with the queuing): the claim
        # itself must not send it.
        raced = subscribers.get(session, "raced@example.com")
        session.execute(
            sa.update(U).where(U.c.subscriber_id == raced.id).values(status="unsubscribed")
        )
    with db.transaction() as session:
        claimed = outbox.claim(session, owner="w", limit=10, lease=timedelta(minutes=5))
    assert [c.to_email for c in claimed] == ["stays@example.com"]
    assert {r.to_email: r.status for r in _rows(db)} == {
        "leaves@example.com": "cancelled",
        "raced@example.com": "cancelled",
        "stays@example.com": "sending",
    }


def test_cancel_takes_back_what_is_queued_and_counts_what_went(
    db: Database, settings: Settings
) -> None:
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        _reader(db, email)
    ident = _create(db)
    with db.transaction() as session:
        announcements.send(session, settings, ident, T0)
        session.execute(
            sa.update(Delivery)
            .where(Delivery.to_email == "a@example.com")
            .values(status=DeliveryStatus.SENT.value)
        )
    with db.transaction() as session:
        done = announcements.cancel(session, ident, T0)
    assert (done.cancelled, done.sent) == (2, 1)
    assert sorted(r.status for r in _rows(db)) == ["cancelled", "cancelled", "sent"]
    with db.transaction() as session, pytest.raises(AnnouncementClosed, match="already cancelled"):
        announcements.cancel(session, ident, T0)
    with db.transaction() as session, pytest.raises(AnnouncementClosed, match="cancelled"):
        announcements.send(session, settings, ident, T0)


def test_cancelling_what_has_all_gone_out_is_refused(db: Database, settings: Settings) -> None:
    _reader(db, "a@example.com")
    ident = _create(db)
    with db.transaction() as session:
        announcements.send(session, settings, ident, T0)
        session.execute(sa.update(Delivery).values(status=DeliveryStatus.SENT.value))
    with db.transaction() as session, pytest.raises(AnnouncementClosed, match="gone out"):
        announcements.cancel(session, ident, T0)


def test_a_moment_in_the_past_is_refused_and_a_future_one_waits_for_its_tick(
    db: Database, settings: Settings
) -> None:
    _reader(db, "a@example.com")
    ident = _create(db)
    with db.transaction() as session, pytest.raises(ScheduleInPast):
        announcements.schedule_at(session, ident, T0 - timedelta(minutes=1), T0)
    with db.transaction() as session:
        announcements.schedule_at(session, ident, T0 + timedelta(hours=1), T0)
    assert announcements.queue_due(db, settings, T0 + timedelta(minutes=59)) == 0
    assert _rows(db) == []
    assert announcements.queue_due(db, settings, T0 + timedelta(hours=1)) == 1
    assert announcements.queue_due(db, settings, T0 + timedelta(hours=2)) == 0
    with db.transaction() as session:
        assert announcements.get(session, ident).status == "queued"


def test_the_local_hour_reaches_each_zone_at_its_own_hour(db: Database, settings: Settings) -> None:
    # 09:00 on 2 December: Tokyo (UTC+9) at 00:00 UTC, Paris at 08:00, New York at 14:00.
    _reader(db, "tokyo@example.com", timezone="Asia/Tokyo")
    _reader(db, "paris@example.com", timezone="Europe/Paris")
    _reader(db, "ny@example.com", timezone="America/New_York")
    ident = _create(db)
    now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # Tokyo's 09:00 has passed already
    with db.transaction() as session:
        planned = announcements.schedule_local(session, ident, 9, date(2026, 12, 2), now)
    assert planned.late_zones == ["Asia/Tokyo"]

    def tick(at: datetime) -> list[str]:
        announcements.queue_due(db, settings, at)
        return [r.to_email for r in _rows(db)]

    assert tick(now) == ["tokyo@example.com"]  # the next tick takes the zone already past
    assert tick(datetime(2026, 12, 2, 7, 59, tzinfo=UTC)) == ["tokyo@example.com"]
    # Someone leaves Paris's list before its hour: not mailed.
    with db.transaction() as session:
        subscriptions.unsubscribe(session, subscribers.get(session, "paris@example.com"))
    _reader(db, "paris2@example.com", timezone="Europe/Paris")
    assert tick(datetime(2026, 12, 2, 8, 0, tzinfo=UTC)) == [
        "paris2@example.com",
        "tokyo@example.com",
    ]
    with db.transaction() as session:
        assert announcements.get(session, ident).status == "scheduled"
    assert tick(datetime(2026, 12, 2, 14, 0, tzinfo=UTC)) == [
        "ny@example.com",
        "paris2@example.com",
        "tokyo@example.com",
    ]
    with db.transaction() as session:
        row = announcements.get(session, ident)
        assert (row.status, row.recipients) == ("queued", 3)
    assert len({r.body_id for r in _rows(db)}) == 1  # the later zones got the same body
    tick(datetime(2026, 12, 3, tzinfo=UTC))
    assert len(_rows(db)) == 3


def test_a_local_hour_past_in_every_readers_zone_is_refused(db: Database) -> None:
    _reader(db, "paris@example.com", timezone="Europe/Paris")
    ident = _create(db)
    with db.transaction() as session, pytest.raises(ScheduleInPast, match="every reader"):
        announcements.schedule_local(
            session, ident, 9, date(2026, 12, 2), datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
        )


def test_a_template_set_of_the_newsletters_folder_stands_in_for_markdown(
    db: Database, settings: Settings, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "tech-templates"
    folder.mkdir()
    (folder / "fundraiser_subject.txt").write_text("Give to {{ newsletter_name }}: {{ subject }}")
    (folder / "fundraiser.txt").write_text("Please give. {{ unsubscribe_url }}\n")
    (folder / "fundraiser.html").write_text(
        '{% extends "layout.html" %}{% set width = 500 %}'
        '{% block rows %}<tr><td>Please give. <a href="{{ unsubscribe_url }}">Leave</a>'
        "</td></tr>{% endblock %}"
    )
    with db.transaction() as session:
        newsletters.add(session, "tech", name="Tech", templates_dir=str(folder))
    _reader(db, "t@example.com")
    with db.transaction() as session:
        subscriptions.add(session, "t@example.com", newsletter_id=2, confirmed=True)
        draft = announcements.Draft("Winter drive", "", "fundraiser", audience(0))
        row = announcements.create(session, "tech", draft)
        content = announcement_store.render(session, settings, row)
    assert content.subject == "Give to Tech: Winter drive"
    assert content.text.startswith("Please give. %%UNSUBSCRIBE_URL%%")
    assert "Please give." in content.html and "%%UNSUBSCRIBE_URL%%" in content.html
    with db.transaction() as session, pytest.raises(InvalidInput, match="template set"):
        announcements.create(session, "tech", announcements.Draft("S", "x", "../etc", audience(0)))
    missing = announcements.Draft("S", "", "gala", audience(0))
    with db.transaction() as session, pytest.raises(TemplateProblem, match=r"gala.* not found"):
        announcements.create(session, "tech", missing, settings)


READER_TOPICS = [
    [],
    ["Sport"],
    ["sport", "Food"],
    ["FOOD"],
    ["travel"],
    ["Économie"],
    ["ÉCONOMIE", "x"],
]
WORDS = ["sport", "food", "travel", "économie", "music", "x"]


def _cased(word: str, how: int) -> str:
    return (word, word.upper(), word.title(), word.lower())[how]


@pytest.fixture
def topic_readers(db: Database) -> Database:
    for i, topics in enumerate(READER_TOPICS):
        _reader(db, f"r{i}@example.com", topics=topics)
    return db


@settings_(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wanted=st.lists(st.tuples(st.sampled_from(WORDS), st.integers(0, 3)), max_size=3))
def test_topics_match_any_reader_with_one_in_common_in_any_case(
    topic_readers: Database, wanted: list[tuple[str, int]]
) -> None:
    topics = [_cased(word, how) for word, how in wanted]
    asked = {t.casefold() for t in topics}
    expected = [
        f"r{i}@example.com"
        for i, theirs in enumerate(READER_TOPICS)
        if not asked or not theirs or asked & {t.casefold() for t in theirs}
    ]
    assert _emails(topic_readers, audience(1, topics=topics)) == sorted(expected)


def test_an_announcement_scheduled_for_an_archived_newsletter_is_cancelled_not_sent(
    db: Database, settings: Settings
) -> None:
    with db.transaction() as session:
        sport_id = int(newsletters.add(session, "sport", name="Sport").id or 0)
    _reader(db, "fan@example.org", newsletter_id=sport_id)
    with db.transaction() as session:
        aid = int(announcements.create(session, "sport", _draft()).id or 0)
        announcements.schedule_at(session, aid, T0 + timedelta(hours=1), T0)
    with db.transaction() as session:
        newsletters.archive(session, newsletters.choose(session, "sport", live=False))
    assert announcements.queue_due(db, settings, T0 + timedelta(hours=2)) == 0
    assert _rows(db) == []
    with db.transaction() as session:
        assert announcement_store.get(session, aid).status == "cancelled"
        with pytest.raises(AnnouncementClosed):
            announcements.send(session, settings, aid, T0 + timedelta(hours=2))


def test_mail_a_worker_held_when_the_announcement_was_cancelled_never_goes(
    db: Database, settings: Settings
) -> None:
    """Claimed before the cancel, given back after it (a worker stopped): cancelled, not sent."""
    for who in ("a", "b", "c"):
        _reader(db, f"{who}@example.org")
    aid = _create(db)
    with db.transaction() as session:
        announcements.send(session, settings, aid, T0)
    with db.transaction() as session:
        held = outbox.claim(session, owner="w1", limit=2, lease=timedelta(minutes=5))
    assert len(held) == 2
    with db.transaction() as session:
        done = announcements.cancel(session, aid, T0)
    assert (done.cancelled, done.in_flight) == (1, 2)
    with db.transaction() as session:
        outbox.give_back(session, owner="w1", ids=[c.id for c in held])
    with db.transaction() as session:
        assert outbox.claim(session, owner="w2", limit=10, lease=timedelta(minutes=5)) == []
    assert {r.status for r in _rows(db)} == {DeliveryStatus.CANCELLED.value}
