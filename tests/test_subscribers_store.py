"""The subscriber store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from digest import subscribers as store
from digest import subscription_requests, subscriptions, suppressions
from digest.db import Database
from digest.errors import InvalidEmail, InvalidInput, SubscriberNotFound, Suppressed
from digest.models import Delivery, Subscriber, Suppression
from digest.subscriber_fields import Consent


def _consent() -> Consent:
    return Consent(
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        ip="203.0.113.9",
        user_agent="Mozilla/5.0",
        source="footer form",
        wording="v1",
    )


def test_one_subscriber_whatever_the_spelling(db: Database) -> None:
    with db.transaction() as s:
        subscriptions.add(s, "Ann@Example.COM", name="Ann")
        subscriptions.add(s, "  ann@example.com ", cadence="weekly")
    with db.transaction() as s:
        subs = store.list_readers(s)
    assert [(x.email, x.name, x.cadence) for x in subs] == [("ann@example.com", "Ann", "weekly")]


def test_internationalised_address_is_accepted(db: Database) -> None:
    with db.transaction() as s:
        sub = subscriptions.add(s, "José@Bücher.example")
    with db.transaction() as s:
        assert store.reader(s, "josé@bücher.example").id == sub.id


def test_bad_values_are_refused_and_nothing_is_written(db: Database) -> None:
    for kwargs in ({"cadence": "monthly"}, {"timezone": "Mars/Olympus"}, {"send_hour": 24}):
        with pytest.raises(InvalidInput), db.transaction() as s:
            subscriptions.add(s, "x@example.com", **kwargs)
    with pytest.raises(InvalidEmail), db.transaction() as s:
        subscriptions.add(s, "x@@example.com")
    with db.transaction() as s:
        assert store.list_readers(s) == []


def test_times_come_back_aware_utc(db: Database) -> None:
    with db.transaction() as s:
        subscription_requests.request_subscription(s, "t@example.com", consent=_consent())
    with db.transaction() as s:
        sub = store.reader(s, "t@example.com")
    assert sub.consent_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert sub.created_at.tzinfo is not None and sub.created_at.utcoffset().total_seconds() == 0


def test_subscription_life_cycle_stamps_times_and_keeps_consent(db: Database) -> None:
    with db.transaction() as s:
        done = subscription_requests.request_subscription(
            s, "p@example.com", consent=_consent(), name="Pat", cadence="weekly", topics=["World"]
        )
        sub, prior = store.reader(s, "p@example.com"), done.prior[1]
        assert prior is None and sub.status == "pending" and sub.confirmed_at is None
    with db.transaction() as s:
        sub = store.reader(s, "p@example.com")
        assert subscriptions.confirm(s, sub) == [1]
        assert subscriptions.confirm(s, sub) == []  # a second click changes nothing
    with db.transaction() as s:
        sub = store.reader(s, "p@example.com")
        assert (sub.status, sub.consent_ip, sub.consent_source) == (
            "active",
            "203.0.113.9",
            "footer form",
        )
        assert sub.confirmed_at is not None
        assert subscriptions.unsubscribe(s, sub) is True
        assert subscriptions.unsubscribe(s, sub) is False
    with db.transaction() as s:
        sub = store.reader(s, "p@example.com")
        assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None


def test_active_subscriber_is_not_changed_by_a_new_request(db: Database) -> None:
    with db.transaction() as s:
        subscriptions.add(s, "a@example.com", cadence="daily", confirmed=True)
    with db.transaction() as s:
        done = subscription_requests.request_subscription(
            s, "a@example.com", consent=_consent(), cadence="weekly"
        )
        sub, prior = store.reader(s, "a@example.com"), done.prior[1]
    assert prior == "active" and sub.status == "active" and sub.cadence == "daily"


def test_unsubscribe_cancels_unsent_mail_only(db: Database) -> None:
    with db.transaction() as s:
        sub = subscriptions.add(s, "u@example.com", confirmed=True)
        for i, status in enumerate(["queued", "deferred", "sent", "sending"]):
            s.add(
                Delivery(
                    subscriber_id=sub.id, to_email=sub.email, status=status, message_id=f"<{i}@x>"
                )
            )
    with db.transaction() as s:
        subscriptions.unsubscribe(s, store.reader(s, "u@example.com"))
    with db.transaction() as s:
        statuses = sorted(d.status for d in s.exec(select(Delivery)))
    assert statuses == sorted(["cancelled", "cancelled", "sent", "sending"])


def test_erase_deletes_everything_and_keeps_only_a_hash(db: Database) -> None:
    with db.transaction() as s:
        sub = subscriptions.add(s, "gone@example.com", name="Gone", confirmed=True)
        s.add(Delivery(subscriber_id=sub.id, to_email=sub.email, message_id="<1@x>"))
    with db.transaction() as s:
        store.erase(s, "Gone@Example.com")
    with db.engine.connect() as conn:
        dump = " ".join(
            str(row)
            for t in ("subscribers", "deliveries", "suppressions")
            for row in conn.execute(sa.text(f"SELECT * FROM {t}"))
        )
    assert "gone@example.com" not in dump.lower() and "Gone" not in dump
    with db.transaction() as s:
        assert suppressions.is_suppressed(s, "GONE@example.com")
        assert s.exec(select(Delivery)).all() == []
        with pytest.raises(Suppressed):
            subscriptions.add(s, "gone@example.com")


def test_erased_person_may_subscribe_again_themselves(db: Database) -> None:
    with db.transaction() as s:
        subscriptions.add(s, "back@example.com", confirmed=True)
        store.erase(s, "back@example.com")
    with db.transaction() as s:
        done = subscription_requests.request_subscription(s, "back@example.com", consent=_consent())
        sub = store.get_by_id(s, done.subscriber_id)
        subscriptions.confirm(s, sub)
    with db.transaction() as s:
        assert store.reader(s, "back@example.com").status == "active"
        assert not suppressions.is_suppressed(s, "back@example.com")
        assert s.exec(select(Suppression)).all() == []


def test_unknown_subscriber(db: Database) -> None:
    with pytest.raises(SubscriberNotFound), db.transaction() as s:
        store.reader(s, "nobody@example.com")
    with pytest.raises(SubscriberNotFound), db.transaction() as s:
        store.erase(s, "nobody@example.com")


def test_hard_bounce_suppresses(db: Database) -> None:
    with db.transaction() as s:
        sub = subscriptions.add(s, "b@example.com", confirmed=True)
        subscriptions.mark_bounced(s, sub)
    with db.transaction() as s:
        assert store.reader(s, "b@example.com").status == "bounced"
        assert suppressions.is_suppressed(s, "b@example.com")
        assert store.count_by_status(s)["bounced"] == 1


def test_unique_address_is_enforced_by_the_database(db: Database) -> None:
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as s:
        s.add(Subscriber(email="d@example.com"))
        s.flush()
        s.add(Subscriber(email="d@example.com"))
        s.flush()


def test_preferences_change_all_or_nothing(db: Database) -> None:
    with db.transaction() as s:
        sub = subscriptions.add(
            s, "pref@example.com", cadence="daily", topics=["World"], confirmed=True
        )
        with pytest.raises(InvalidInput):
            subscriptions.update_preferences(s, sub, cadence="weekly", topics=[], send_hour="25")
        assert (sub.cadence, sub.topics, sub.send_hour) == ("daily", ["World"], 7)
        subscriptions.update_preferences(s, sub, cadence="", timezone=None, send_hour="9")
    with db.transaction() as s:
        sub = store.reader(s, "pref@example.com")
        assert (sub.cadence, sub.topics, sub.timezone, sub.send_hour) == (
            "daily",
            ["World"],
            "UTC",
            9,
        )
