"""Webhook events from the state changes that make them to a real receiver on loopback, through
the durable queue: signed, retried when the receiver is down, slow or failing, dead after 24
hours, repeated with the same id after a crash, never sent twice by two senders. Both stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest import subscribers, subscriptions, webhooks
from digest import webhook_rules as rules
from digest.addresses import email_hash
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.links import unsubscribe_url
from digest.models_engagement import WebhookDelivery
from digest.subscriber_fields import Consent
from digest.subscribers_csv import import_rows
from digest.subscription_requests import request_subscription
from digest.webhook_sender import WebhookSender
from tests.support.web import HTML, client, confirm_link, confirm_mails, make_app, path_of
from tests.support.webhook_receiver import Receiver, webhook_receiver
from tests.support.workers import start_worker, worker_env

WD = WebhookDelivery.__table__  # type: ignore[attr-defined]


@pytest.fixture
def hooks_settings(make_settings, db: Database) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, allow_private_webhooks=True, webhook_timeout=5.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as r:
        yield r


def _add(db: Database, settings: Settings, url: str, events: str = "") -> tuple[int, str]:
    with db.transaction() as session:
        row, secret = webhooks.add(session, settings, url, events or ",".join(rules.EVENTS))
        return int(row.id or 0), secret


def _drain(db: Database, settings: Settings, **kwargs: object) -> dict[str, int]:
    return asyncio.run(WebhookSender(settings, db, **kwargs).drain())  # type: ignore[arg-type]


def _rows(db: Database) -> list[sa.Row]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(WD).order_by(WD.c.id)))


def test_state_changes_arrive_signed_with_their_data(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _, secret = _add(db, hooks_settings, receiver.url)
    now = utcnow()
    with db.transaction() as session:
        request_subscription(session, "Ann@Example.org", consent=Consent(at=now, source="t"))
    with db.transaction() as session:
        subscriptions.confirm(session, subscribers.get(session, "ann@example.org"))
    with db.transaction() as session:
        subscriptions.unsubscribe(session, subscribers.get(session, "ann@example.org"))
    with db.transaction() as session:
        subscriptions.add(session, "bob@example.org", confirmed=True)
        subscriptions.add(session, "cy@example.org", confirmed=True)
    with db.transaction() as session:
        subscriptions.record_bounce(session, "bob@example.org")
        subscriptions.record_bounce(session, "cy@example.org", complaint=True)
    with db.transaction() as session:
        subscriptions.add(session, "dee@example.org", confirmed=True)
    with db.transaction() as session:
        subscribers.erase(session, "dee@example.org")
    counts = _drain(db, hooks_settings)
    got = receiver.wait_for(8)
    # POSTs go side by side, so they may arrive in any order; each carries its time.
    events = [
        (e["type"], e["data"].get("email"), e["data"].get("status")) for e in receiver.events()
    ]
    assert sorted(events, key=str) == sorted(
        [
            ("subscriber.pending", "ann@example.org", "pending"),
            ("subscriber.confirmed", "ann@example.org", "active"),
            ("subscriber.unsubscribed", "ann@example.org", "unsubscribed"),
            ("subscriber.confirmed", "bob@example.org", "active"),
            ("subscriber.confirmed", "cy@example.org", "active"),
            ("subscriber.bounced", "bob@example.org", "bounced"),
            ("subscriber.complained", "cy@example.org", "complained"),
            # dee's own confirmation was taken out of the queue by the erasure: only the hash went.
            ("subscriber.erased", None, None),
        ],
        key=str,
    )
    assert counts["delivered"] == 8
    (erasure,) = [r for r in got if r.event["type"] == "subscriber.erased"]
    assert erasure.event["data"]["email_hash"] == email_hash("dee@example.org")
    assert erasure.event["data"]["newsletters"] == ["digest"]
    assert "dee@" not in erasure.body.decode()
    assert {e["data"].get("newsletter") for e in receiver.events()} == {"digest", None}
    for request in got:
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("digest-webhooks/")
        t, _, v1 = request.headers["Digest-Signature"].partition(",")
        signed = t.removeprefix("t=").encode() + b"." + request.body
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert v1 == f"v1={expected}"
    assert {r.status for r in _rows(db)} == {"delivered"}


def test_nothing_is_queued_without_a_webhook_or_for_events_it_does_not_take(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    with db.transaction() as session:
        subscriptions.add(session, "early@example.org", confirmed=True)
    assert _rows(db) == []
    _add(db, hooks_settings, receiver.url, "subscriber.unsubscribed")
    with db.transaction() as session:
        subscriptions.add(session, "late@example.org", confirmed=True)
        subscriptions.unsubscribe(session, subscribers.get(session, "late@example.org"))
    assert [r.type for r in _rows(db)] == ["subscriber.unsubscribed"]


def test_a_rolled_back_change_reports_nothing(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _add(db, hooks_settings, receiver.url)
    with pytest.raises(RuntimeError), db.transaction() as session:
        subscriptions.add(session, "gone@example.org", confirmed=True)
        raise RuntimeError("the request failed after the change")
    assert _rows(db) == []


@pytest.mark.parametrize("trouble", ["500", "slow", "down"])
def test_a_receiver_that_fails_gets_the_event_later(
    db: Database, hooks_settings: Settings, receiver: Receiver, trouble: str
) -> None:
    url = receiver.url
    if trouble == "500":
        receiver.status = 500
    elif trouble == "slow":
        receiver.delay = 3.0
        hooks_settings = hooks_settings.model_copy(update={"webhook_timeout": 0.5})
    else:
        url = "http://127.0.0.1:9/hook"  # the discard port: nothing listens
    _add(db, hooks_settings, url)
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
    assert _drain(db, hooks_settings)["retry"] == 1
    (row,) = _rows(db)
    assert row.status == "pending" and row.attempts == 1
    reason = {"500": "answered 500", "slow": "no answer in time", "down": "cannot connect"}
    assert reason[trouble] in row.last_error
    assert "\n" not in row.last_error
    # Not due yet: a drain now sends nothing.
    assert _drain(db, hooks_settings)["retry"] == 0
    receiver.status, receiver.delay = 200, 0.0
    if trouble == "down":
        with db.transaction() as session:
            session.execute(sa.update(WD).values(next_attempt_at=utcnow()))
            session.execute(sa.text("UPDATE webhooks SET url = :u"), {"u": receiver.url})
    later = utcnow() + timedelta(minutes=5)
    assert _drain(db, hooks_settings, clock=lambda: later)["delivered"] == 1
    first_id = row.event_id
    delivered = [e["id"] for e in receiver.events()]
    assert delivered[-1] == first_id  # the same event, the same id
    (row,) = _rows(db)
    assert row.status == "delivered" and row.attempts == 2 and row.last_error is None


def test_dead_after_24_hours(db: Database, hooks_settings: Settings, receiver: Receiver) -> None:
    receiver.status = 503
    _add(db, hooks_settings, receiver.url)
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
    _drain(db, hooks_settings)
    past = utcnow() + timedelta(hours=24, minutes=1)
    assert _drain(db, hooks_settings, clock=lambda: past)["dead"] == 1
    (row,) = _rows(db)
    assert row.status == "dead" and "503" in row.last_error
    # Dead is final: a later round sends nothing.
    n = len(receiver.got)
    _drain(db, hooks_settings, clock=lambda: past + timedelta(hours=2))
    assert len(receiver.got) == n


def test_a_crash_mid_post_repeats_that_event_with_the_same_id(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _add(db, hooks_settings, receiver.url)
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
    receiver.hold = True

    async def crash() -> None:
        sender = WebhookSender(hooks_settings, db)
        task = asyncio.ensure_future(sender.send_due())
        while not receiver.arrived.is_set():
            await asyncio.sleep(0.01)
        task.cancel()  # the process dies with the POST in flight: nothing recorded
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(crash())
    receiver.hold = False
    receiver.release.set()
    # Another sender while the lease holds takes nothing ...
    assert _drain(db, hooks_settings)["delivered"] == 0
    # ... and once it ran out, sends the event again, same id, same body.
    later = utcnow() + timedelta(minutes=10)
    assert _drain(db, hooks_settings, clock=lambda: later)["delivered"] == 1
    first, again = receiver.wait_for(2)
    assert first.event["id"] == again.event["id"] and first.body == again.body


def test_two_senders_never_send_one_event_twice(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _add(db, hooks_settings, receiver.url, "subscriber.confirmed")
    with db.transaction() as session:
        for i in range(120):
            subscriptions.add(session, f"r{i}@example.org", confirmed=True)
    other = Database(db.url)

    async def both() -> None:
        await asyncio.gather(
            WebhookSender(hooks_settings, db).drain(), WebhookSender(hooks_settings, other).drain()
        )

    try:
        asyncio.run(both())
    finally:
        other.dispose()
    # A POST that timed out on a loaded machine is retried later, by design; let it go.
    later = utcnow() + timedelta(hours=1)
    _drain(db, hooks_settings, clock=lambda: later)
    ids = [e["id"] for e in receiver.events()]
    assert len(set(ids)) == 120
    assert {r.status for r in _rows(db)} == {"delivered"}
    # An event that came twice was retried after a failure was recorded, never taken by both.
    tries = {r.event_id: r.attempts for r in _rows(db)}
    assert all(ids.count(i) <= tries[i] for i in set(ids))


def test_a_webhook_removed_gets_nothing_more(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    webhook_id, _ = _add(db, hooks_settings, receiver.url)
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
        webhooks.remove(session, webhook_id)
    with db.transaction() as session:
        subscriptions.add(session, "bob@example.org", confirmed=True)
    assert _rows(db) == []
    _drain(db, hooks_settings)
    assert receiver.got == []


def test_a_subscribe_request_costs_the_same_statements_with_a_webhook_listening(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _add(db, hooks_settings, receiver.url, "subscriber.pending")
    with db.transaction() as session:
        subscriptions.add(session, "active@example.org", confirmed=True)
        request_subscription(session, "pending@example.org", consent=Consent(at=utcnow()))
    shapes: dict[str, list[str]] = {}
    for who in ("new", "pending", "active"):
        seen: list[str] = []

        def record(conn: object, cursor: object, statement: str, *args: object) -> None:
            if "webhook" in statement:  # the rest is test_signup_timing's to hold
                seen.append(" ".join(statement.split()))  # noqa: B023 (used at once)

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            with db.transaction() as session:
                consent = Consent(at=utcnow(), source="form")
                request_subscription(session, f"{who}@example.org", consent=consent)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        shapes[who] = seen
    assert any(s.startswith("INSERT INTO webhook_deliveries") for s in shapes["new"])
    assert shapes["pending"] == shapes["new"] and shapes["active"] == shapes["new"]
    # Only the request that made a subscription pending was queued.
    assert [r.body.count("new@example.org") for r in _rows(db)][-1] == 1
    assert sum("active@" in r.body for r in _rows(db)) == 0


async def test_the_web_faces_report_subscribe_confirm_and_one_click_unsubscribe(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _add(db, hooks_settings, receiver.url)
    app = make_app(hooks_settings, db)
    async with client(app) as http:
        answer = await http.post("/subscribe", data={"email": "web@example.org"}, headers=HTML)
        assert answer.status_code == 200
        (_, body), *_ = confirm_mails(db, "web@example.org")
        assert (await http.post(path_of(confirm_link(body)))).status_code == 200
        with db.transaction() as session:
            person = subscribers.get(session, "web@example.org")
        one_click = unsubscribe_url(hooks_settings, int(person.id or 0), person.email, 1)
        data = {"List-Unsubscribe": "One-Click"}
        assert (await http.post(path_of(one_click), data=data)).status_code == 200
    app.state.writer.close()
    await WebhookSender(hooks_settings, db).drain()
    types = sorted((e["data"]["at"], e["type"]) for e in receiver.events())
    assert [t for _, t in types] == [
        "subscriber.pending",
        "subscriber.confirmed",
        "subscriber.unsubscribed",
    ]


def test_an_import_reports_each_reader_in_a_few_statements(
    db: Database, hooks_settings: Settings, receiver: Receiver
) -> None:
    _add(db, hooks_settings, receiver.url, "subscriber.confirmed,subscriber.unsubscribed")
    rows = [
        (i + 2, {"email": f"imp{i}@example.org", "status": "active", "consent_at": ""})
        for i in range(1500)
    ]
    rows.append((2000, {"email": "left@example.org", "status": "unsubscribed"}))
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("INSERT INTO webhook_deliveries"):
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.transaction() as session:
            report = import_rows(session, rows, status="active")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert report.added == 1501
    queued = _rows(db)
    assert len(queued) == 1501
    assert sorted({r.type for r in queued}) == ["subscriber.confirmed", "subscriber.unsubscribed"]
    assert len(seen) <= 4  # executemany in chunks, not a statement per reader


def test_a_worker_killed_mid_post_repeats_only_that_event_with_its_id(
    db: Database, hooks_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    _add(db, hooks_settings, receiver.url)
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.org", confirmed=True)
    receiver.hold = True
    env = worker_env(db.url, f"file:{tmp_path / 'out'}", DIGEST_ALLOW_PRIVATE_WEBHOOKS="true")
    worker = start_worker(env, tmp_path)
    try:
        assert receiver.arrived.wait(60), worker.stderr.read1().decode()  # type: ignore[union-attr]
    finally:
        worker.send_signal(signal.SIGKILL)  # mid-POST: nothing recorded, no lease given back
        worker.wait(10)
    (row,) = _rows(db)
    assert row.status == "pending" and row.attempts == 0 and row.lease_expires_at is not None
    receiver.hold = False
    receiver.release.set()
    later = utcnow() + timedelta(minutes=10)  # past the dead worker's lease
    assert _drain(db, hooks_settings, clock=lambda: later)["delivered"] == 1
    first, again = receiver.wait_for(2)
    assert first.event["id"] == again.event["id"] == row.event_id
