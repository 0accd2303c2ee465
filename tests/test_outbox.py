"""The outbox on SQLite and PostgreSQL: set-wise idempotent enqueueing, leases, outcomes."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import sqlalchemy as sa

from digest import subscribers, suppressions
from digest.clock import utcnow
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.bounces import apply_refusals
from digest.delivery.outcomes import Outcome
from digest.mail.content import MailContent
from digest.models import Body, Delivery, Subscriber, Subscription
from tests.support.outbox import add_subscribers, enqueue, make_edition

D = Delivery.__table__
LEASE = timedelta(minutes=5)


def statuses(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        rows = session.execute(sa.select(D.c.status, sa.func.count()).group_by(D.c.status))
        return {s: n for s, n in rows}


def test_transactional_mail_is_one_body_and_one_queued_row(db: Database) -> None:
    with db.transaction() as session:
        d = session.get(
            Delivery,
            outbox.enqueue_transactional(
                session,
                kind="confirm",
                to_email="new@example.org",
                subscriber_id=None,
                mail=MailContent("Confirm", "t", "<p>h</p>"),
                domain="example.org",
            ),
        )
    assert d is not None and d.status == "queued" and d.period_key is None
    assert d.message_id.startswith("<") and d.message_id.endswith("@example.org>")
    with db.transaction() as session:
        body = session.get(Body, d.body_id)
        assert body is not None and body.subject == "Confirm"


def test_enqueueing_an_edition_twice_adds_nothing(db: Database) -> None:
    add_subscribers(db, 50)
    add_subscribers(db, 5, status="pending", start=50)
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == 50
    assert enqueue(db, edition_id, body_id) == 0
    # another edition in the same period: the period key is taken
    other_edition, other_body = make_edition(db, "daily:2026-11-29T08Z")
    assert enqueue(db, other_edition, other_body, prefix="e2") == 0
    with db.transaction() as session:
        ids = session.execute(sa.select(D.c.message_id, D.c.subscriber_id)).all()
    assert len({m for m, _ in ids}) == 50
    assert all(re.fullmatch(rf"<e1\.{s}\.[0-9a-f]{{16}}@example\.org>", m) for m, s in ids)
    assert len({m for m, _ in ids}) == len(ids)


def test_two_processes_enqueueing_at_once_add_each_row_once(db: Database) -> None:
    add_subscribers(db, 400)
    edition_id, body_id = make_edition(db)
    added: list[int] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        added.append(enqueue(db, edition_id, body_id))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(added) == 400
    assert statuses(db) == {"queued": 400}


def test_skips_take_the_period(db: Database) -> None:
    add_subscribers(db, 10)
    edition_id, body_id = make_edition(db)
    with db.transaction() as session:
        n = outbox.record_skips(
            session,
            edition_id=edition_id,
            period_key="daily:2026-11-29",
            subscriber_filter=sa.select(Subscriber.id).where(Subscriber.id <= 4),
            message_id_prefix="e1",
            domain="example.org",
        )
    assert n == 4
    assert enqueue(db, edition_id, body_id) == 6
    assert statuses(db) == {"skipped": 4, "queued": 6}


def test_claims_lease_rows_to_one_worker_at_a_time(db: Database) -> None:
    add_subscribers(db, 30)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        first = outbox.claim(session, owner="w1", limit=20, lease=LEASE)
    with db.transaction() as session:
        second = outbox.claim(session, owner="w2", limit=20, lease=LEASE)
    assert len(first) == 20 and len(second) == 10
    assert not {c.id for c in first} & {c.id for c in second}
    assert first[0].to_name.startswith("P ")
    with db.transaction() as session:
        assert outbox.claim(session, owner="w3", limit=20, lease=LEASE) == []
        # an expired lease is taken back by whoever claims next
        later = utcnow() + LEASE + timedelta(seconds=1)
        third = outbox.claim(session, owner="w3", limit=100, lease=LEASE, now=later)
    assert len(third) == 30


def test_concurrent_claims_never_overlap(db: Database) -> None:
    add_subscribers(db, 600)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    got: dict[str, list[int]] = {}

    def run(owner: str) -> None:
        mine: list[int] = []
        while True:
            with db.transaction() as session:
                batch = outbox.claim(session, owner=owner, limit=37, lease=LEASE)
            if not batch:
                break
            mine.extend(c.id for c in batch)
        got[owner] = mine

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in got.values() for i in ids]
    assert len(every) == len(set(every)) == 600


def test_claim_cancels_leavers_and_skips_late_digests(db: Database) -> None:
    add_subscribers(db, 6)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id, send_by=utcnow() + timedelta(hours=1))
    with db.transaction() as session:
        # One leaves through a path that does not cancel (a direct status change), one row is late.
        session.execute(
            sa.update(Subscription.__table__)
            .where(Subscription.subscriber_id == 1)
            .values(status="unsubscribed")
        )
        session.execute(
            sa.update(D)
            .where(D.c.subscriber_id == 2)
            .values(send_by=utcnow() - timedelta(minutes=1))
        )
        claimed = outbox.claim(session, owner="w1", limit=10, lease=LEASE)
    assert sorted(c.subscriber_id for c in claimed) == [3, 4, 5, 6]
    with db.transaction() as session:
        rows = dict(session.execute(sa.select(D.c.subscriber_id, D.c.status)).all())
    assert rows[1] == "cancelled" and rows[2] == "skipped"


def test_outcomes_are_written_only_under_our_lease(db: Database) -> None:
    add_subscribers(db, 4)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        a, b, c, d = outbox.claim(session, owner="w1", limit=10, lease=LEASE)
    later = utcnow() + timedelta(minutes=3)
    with db.transaction() as session:
        n = outbox.record(
            session,
            owner="w1",
            outcomes=[
                Outcome(a.id, "sent", "250 ok"),
                Outcome(b.id, "deferred", "451 later", next_attempt_at=later),
                Outcome(c.id, "bounced", "552 too big"),
            ],
        )
        assert n == 3
        # someone else's outcome for our lease is ignored
        assert outbox.record(session, owner="w2", outcomes=[Outcome(d.id, "sent", "250")]) == 0
        assert outbox.give_back(session, owner="w1", ids=[d.id]) == 1
    with db.transaction() as session:
        rows = {r.id: r for r in session.execute(sa.select(D)).all()}
    assert rows[a.id].status == "sent" and rows[a.id].sent_at is not None
    assert rows[b.id].status == "deferred" and rows[b.id].attempts == 1
    assert rows[b.id].next_attempt_at == later
    assert rows[c.id].status == "bounced" and rows[c.id].last_reply == "552 too big"
    assert rows[d.id].status == "queued" and rows[d.id].lease_owner is None
    # a deferred row is not due before its time
    with db.transaction() as session:
        due = outbox.claim(session, owner="w1", limit=10, lease=LEASE)
    assert [x.id for x in due] == [d.id]


def test_hard_bounce_marks_the_subscriber_and_suppresses_the_address(db: Database) -> None:
    add_subscribers(db, 1)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        (c,) = outbox.claim(session, owner="w1", limit=10, lease=LEASE)
        outcomes = [
            Outcome(
                c.id,
                "bounced",
                "550 5.1.1 user unknown",
                hard_bounce=True,
                subscriber_id=c.subscriber_id,
                to_email=c.to_email,
            )
        ]
        assert outbox.record(session, owner="w1", outcomes=outcomes) == 1
        apply_refusals(session, outcomes, soft_bounce_limit=0)
    with db.transaction() as session:
        person = subscribers.reader(session, "p0@example.org")
        assert person.status == "bounced"
        assert suppressions.is_suppressed(session, "p0@example.org")


def test_expired_leases_are_requeued(db: Database) -> None:
    add_subscribers(db, 3)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        claimed = outbox.claim(session, owner="dead", limit=10, lease=LEASE)
        outbox.record(
            session,
            owner="dead",
            outcomes=[Outcome(claimed[0].id, "deferred", "451", next_attempt_at=utcnow())],
        )
        claimed2 = outbox.claim(session, owner="dead", limit=10, lease=LEASE)
    assert len(claimed) == 3 and len(claimed2) == 1
    with db.transaction() as session:
        assert outbox.requeue_expired_leases(session, utcnow()) == 0
        assert outbox.requeue_expired_leases(session, utcnow() + LEASE * 2) == 3
    # tried before -> deferred, never tried -> queued
    assert statuses(db) == {"deferred": 1, "queued": 2}


def test_a_worker_can_extend_only_its_own_leases(db: Database) -> None:
    add_subscribers(db, 4)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        outbox.claim(session, owner="w1", limit=3, lease=LEASE)
        outbox.claim(session, owner="w2", limit=3, lease=LEASE)
        later = utcnow() + timedelta(hours=1)
        assert outbox.extend_leases(session, owner="w1", until=later) == 3
    with db.transaction() as session:
        leases = dict(session.execute(sa.select(D.c.lease_owner, D.c.lease_expires_at)).all())
    assert leases["w1"] == later and leases["w2"] < later


def test_erasure_takes_the_bodies_of_the_persons_own_mail_skipped_or_not(db: Database) -> None:
    """Every subscribe request writes a body (skipped when no mail is due); an erasure takes
    them with the rows, and leaves the edition's shared body to the other readers."""
    add_subscribers(db, 2)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    with db.transaction() as session:
        person = subscribers.reader(session, "p0@example.org")
        for skip in (None, "already subscribed"):
            outbox.enqueue_transactional(
                session,
                kind="confirm",
                to_email=person.email,
                subscriber_id=person.id,
                mail=MailContent("Confirm", "link for p0", "<p>link for p0</p>"),
                domain="example.org",
                skip=skip,
            )
    with db.transaction() as session:
        subscribers.erase(session, "p0@example.org")
    with db.transaction() as session:
        left = session.execute(sa.select(Body.id, Body.text)).all()  # type: ignore[call-overload]
        rows = session.execute(sa.select(D.c.to_email, D.c.body_id)).all()
    assert [text for _, text in left if "p0" in text] == []
    assert [tuple(r) for r in rows] == [("p1@example.org", body_id)]
    assert [bid for bid, _ in left] == [body_id]
