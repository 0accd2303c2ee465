"""A reader's first scheduled digest comes at their next send hour, not within the minute.

A subscriber imported or confirmed after today's send hour waits for tomorrow's (a 50,000-row
import at 3 pm must not mail everyone at 3 pm); a reader who was active at the hour and missed
it because digest was down still gets it; ``digest send`` still sends to everyone now. The
clock is fixed with time-machine, which moves the store's own timestamps with it; both stores.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import time_machine

from digest import editions, schedule, subscriptions
from digest import subscribers as store
from digest import subscribers_csv as csvio
from digest.config import Settings
from digest.db import Database
from digest.models import Delivery, Subscriber
from digest.posts import store as posts

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
DAY = datetime(2026, 6, 1, tzinfo=UTC)
SEVEN = DAY + timedelta(hours=7)  # everyone's send hour: 07:00 UTC
THREE_PM = DAY + timedelta(hours=15)
# An export from another digest: the times in it are the old service's, long before today.
EXPORTED = (
    "email,status,created_at,confirmed_at\n"
    "moved1@example.com,active,2025-01-05T10:00:00+00:00,2025-01-05T10:05:00+00:00\n"
    "moved2@example.com,active,2025-02-05T10:00:00+00:00,2025-02-05T10:05:00+00:00\n"
)


def _at(when: datetime) -> time_machine.travel:
    return time_machine.travel(when, tick=False)


def _mailed(db: Database) -> dict[str, str]:
    """Address -> period key of every digest queued so far."""
    with db.transaction() as s:
        rows = s.execute(
            sa.select(S.c.email, D.c.period_key)
            .join(S, S.c.id == D.c.subscriber_id)
            .order_by(D.c.id)  # the latest of each address last
        )
        return {email: key for email, key in rows}


def _news(db: Database, title: str) -> None:
    with db.transaction() as s:
        posts.add_post(s, title=title, url=f"https://news.example/{title.replace(' ', '-')}")


def _late_joiners(db: Database) -> None:
    """At 05:00 one reader confirms; at 3 pm another confirms and a list is imported."""
    with _at(DAY + timedelta(hours=5)):
        _news(db, "morning news")
        with db.transaction() as s:
            subscriptions.add(s, "early@example.com", confirmed=True)
            subscriptions.add(s, "late@example.com")  # pending: confirms in the afternoon
    with _at(THREE_PM), db.transaction() as s:
        subscriptions.confirm(s, store.find(s, "late@example.com"))  # type: ignore[arg-type]
        report = csvio.import_rows(s, csvio.read_rows(io.StringIO(EXPORTED)))
        assert report.added == 2


def test_readers_who_join_after_the_hour_get_their_first_digest_at_the_next(
    db: Database, make_settings
) -> None:
    settings: Settings = make_settings(database_url=db.url)
    _late_joiners(db)
    # digest was down from before 07:00 until 3 pm: the first tick after the restart.
    tick = THREE_PM + timedelta(minutes=1)
    with _at(tick):
        schedule.run_digests(db, settings, tick)
    # Due while digest was down: still goes. Joined after the hour: nothing today.
    assert _mailed(db) == {"early@example.com": "1/daily:2026-06-01"}
    with _at(tick), db.transaction() as s:
        [run] = schedule.next_runs(s, settings, tick)
    assert run.at == SEVEN + timedelta(days=1)  # what `digest status` shows

    with _at(SEVEN + timedelta(days=1, hours=-1)):
        _news(db, "tuesday news")
    tomorrow = SEVEN + timedelta(days=1)
    with _at(tomorrow):
        schedule.run_digests(db, settings, tomorrow)
    mailed = _mailed(db)
    assert {a for a, key in mailed.items() if key == "1/daily:2026-06-02"} == {
        "early@example.com",
        "late@example.com",
        "moved1@example.com",
        "moved2@example.com",
    }


def test_readers_who_joined_before_the_hour_are_due_at_it(db: Database, make_settings) -> None:
    settings: Settings = make_settings(database_url=db.url)
    _late_joiners(db)
    with _at(SEVEN), db.transaction() as s:
        [run] = schedule.next_runs(s, settings, SEVEN - timedelta(hours=1))
    assert run.at == SEVEN
    with _at(SEVEN):
        schedule.run_digests(db, settings, SEVEN)
    assert _mailed(db) == {"early@example.com": "1/daily:2026-06-01"}


def test_a_manual_send_still_sends_now_to_every_reader_without_this_periods_digest(
    db: Database, make_settings
) -> None:
    settings: Settings = make_settings(database_url=db.url)
    _late_joiners(db)
    now = THREE_PM + timedelta(minutes=1)
    with _at(now):
        report = editions.make_edition(db, settings, cadence="daily", now=now, due_only=False)
    assert report is not None and report.recipients == 4
    assert set(_mailed(db)) == {
        "early@example.com",
        "late@example.com",
        "moved1@example.com",
        "moved2@example.com",
    }


def test_a_reader_who_comes_back_after_the_hour_waits_for_the_next(
    db: Database, make_settings
) -> None:
    settings: Settings = make_settings(database_url=db.url)
    with _at(DAY - timedelta(days=3)), db.transaction() as s:
        subscriptions.add(s, "back@example.com", confirmed=True)
        subscriptions.unsubscribe(s, store.find(s, "back@example.com"))  # type: ignore[arg-type]
    with _at(THREE_PM):
        _news(db, "afternoon news")
        with db.transaction() as s:
            subscriptions.add(s, "back@example.com", confirmed=True)
        schedule.run_digests(db, settings, THREE_PM)
    assert _mailed(db) == {}
