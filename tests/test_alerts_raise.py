"""Raising a breaking-news alert: who it is queued for, once, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from digest import newsletters
from digest.alerts import HELD_BUDGET, HELD_QUIET, raise_alert
from digest.config import Settings
from digest.db import Database
from digest.errors import AlertRefused, AlreadyAlerted, PostNotFound
from digest.models_campaigns import Alert
from tests.support.alerts import alert_rows, newsletter_settings, post, readers

A = Alert.__table__  # type: ignore[attr-defined]
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_an_alert_is_queued_for_the_active_readers_who_opted_in_only(
    db: Database, settings: Settings
) -> None:
    wanted = readers(db, ["a@example.org", "b@example.org"])
    readers(db, ["not-opted@example.org"], alerts=False)
    readers(db, ["left@example.org"], status="unsubscribed")
    pid = post(db)
    report = raise_alert(db, settings, str(pid), now=NOON)
    assert (report.queued, report.held_budget, report.held_quiet) == (2, 0, 0)
    assert report.expires_at == NOON + timedelta(hours=3)
    assert report.summary() == (
        "queued 2, held by budget 0, held by quiet hours 0; expires at 2026-12-01 15:00 UTC"
    )
    rows = alert_rows(db)
    assert [r.subscriber_id for r in rows] == wanted
    assert {r.status for r in rows} == {"queued"}
    assert {r.period_key for r in rows} == {f"1/alert:{report.alert_id}"}
    assert all(r.message_id.startswith(f"<n{report.alert_id}.{r.subscriber_id}.") for r in rows)
    assert {r.next_attempt_at for r in rows} == {NOON}
    assert {r.send_by for r in rows} == {report.expires_at}
    assert len({r.body_id for r in rows}) == 1  # one shared body
    with db.transaction() as session:
        stored = session.execute(sa.select(A)).one()
    assert (stored.queued, stored.source, stored.body_id) == (2, "editor", rows[0].body_id)


def test_a_post_is_alerted_once_per_newsletter(db: Database, settings: Settings) -> None:
    readers(db, ["a@example.org"])
    pid = post(db)
    raise_alert(db, settings, str(pid), now=NOON)
    with pytest.raises(AlreadyAlerted) as refused:
        raise_alert(db, settings, str(pid), now=NOON + timedelta(minutes=5))
    assert str(refused.value) == (
        f"post {pid} was already alerted in digest at 2026-12-01 12:00 UTC"
    )
    assert refused.value.http_status == 409 and refused.value.exit_code == 1
    assert len(alert_rows(db)) == 1


def test_nobody_opted_in_is_refused_and_nothing_is_recorded(
    db: Database, settings: Settings
) -> None:
    readers(db, ["a@example.org"], alerts=False)
    pid = post(db)
    with pytest.raises(AlertRefused, match="nobody has opted in to alerts from digest"):
        raise_alert(db, settings, str(pid), now=NOON)
    with db.transaction() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(A)).scalar_one() == 0
    assert alert_rows(db) == []


def test_an_archived_newsletter_or_one_without_alerts_or_a_missing_post_is_refused(
    db: Database, settings: Settings
) -> None:
    readers(db, ["a@example.org"])
    pid = post(db)
    with pytest.raises(PostNotFound):
        raise_alert(db, settings, "9999", now=NOON)
    newsletter_settings(db, alerts=False)
    with pytest.raises(AlertRefused, match="does not offer breaking-news alerts"):
        raise_alert(db, settings, str(pid), now=NOON)
    newsletter_settings(db, alerts=True)
    with db.transaction() as session:
        newsletters.archive(session, newsletters.by_id(session, 1))
    with pytest.raises(AlertRefused, match="archived"):
        raise_alert(db, settings, str(pid), now=NOON)
    assert alert_rows(db) == []


def test_the_third_alert_of_a_local_day_is_held_and_the_next_day_is_allowed_again(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, quiet_hours="off")
    utc = readers(db, ["london@example.org"])
    ny = readers(db, ["newyork@example.org"], timezone="America/New_York")
    # 20:00 and 21:00 UTC: the afternoon of December 1 in New York as in London.
    first = raise_alert(
        db, settings, str(post(db, "One")), now=datetime(2026, 12, 1, 20, tzinfo=UTC)
    )
    second = raise_alert(
        db, settings, str(post(db, "Two")), now=datetime(2026, 12, 1, 21, tzinfo=UTC)
    )
    assert (first.queued, second.queued) == (2, 2)
    # 04:30 UTC on December 2 is still December 1 (23:30) in New York: its budget is spent.
    third = raise_alert(
        db, settings, str(post(db, "Three")), now=datetime(2026, 12, 2, 4, 30, tzinfo=UTC)
    )
    assert (third.queued, third.held_budget, third.held_quiet) == (1, 1, 0)
    rows = {
        r.subscriber_id: r for r in alert_rows(db) if r.period_key.endswith(f":{third.alert_id}")
    }
    assert rows[utc[0]].status == "queued"
    assert rows[ny[0]].status == "held" and rows[ny[0]].last_reply == HELD_BUDGET
    # Had it gone in New York, it had to go before local midnight (05:00 UTC), not at expiry.
    assert rows[ny[0]].send_by == datetime(2026, 12, 2, 5, tzinfo=UTC)
    assert rows[utc[0]].send_by == datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
    # 06:00 UTC: a new day in New York too.
    fourth = raise_alert(
        db, settings, str(post(db, "Four")), now=datetime(2026, 12, 2, 6, tzinfo=UTC)
    )
    # London had one (Three) today; New York none sent: both may have this one.
    assert (fourth.queued, fourth.held_budget) == (2, 0)
    fifth = raise_alert(
        db, settings, str(post(db, "Five")), now=datetime(2026, 12, 2, 7, tzinfo=UTC)
    )
    assert (fifth.queued, fifth.held_budget) == (1, 1)  # London's third today


def test_a_budget_of_one_set_on_the_newsletter_holds_the_second(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, quiet_hours="off", alert_budget=1)
    readers(db, ["a@example.org"])
    raise_alert(db, settings, str(post(db, "One")), now=NOON)
    second = raise_alert(db, settings, str(post(db, "Two")), now=NOON + timedelta(minutes=1))
    assert (second.queued, second.held_budget) == (0, 1)


def test_readers_in_quiet_hours_are_held_or_wait_for_the_end_within_expiry(
    db: Database, settings: Settings
) -> None:
    utc = readers(db, ["london@example.org"])
    tokyo = readers(db, ["tokyo@example.org"], timezone="Asia/Tokyo")
    # 14:00 UTC is 23:00 in Tokyo: quiet until 07:00 there (22:00 UTC), past a 3-hour expiry.
    now = datetime(2026, 12, 1, 14, tzinfo=UTC)
    report = raise_alert(db, settings, str(post(db, "One")), now=now)
    assert (report.queued, report.held_budget, report.held_quiet) == (1, 0, 1)
    rows = {r.subscriber_id: r for r in alert_rows(db)}
    assert rows[utc[0]].status == "queued" and rows[utc[0]].next_attempt_at == now
    assert rows[tokyo[0]].status == "held" and rows[tokyo[0]].last_reply == HELD_QUIET
    # With ten hours to go, it waits for Tokyo's morning instead.
    newsletter_settings(db, alert_expiry_hours=10)
    waited = raise_alert(db, settings, str(post(db, "Two")), now=now)
    assert (waited.queued, waited.held_quiet) == (2, 0)
    rows = {
        r.subscriber_id: r for r in alert_rows(db) if r.period_key.endswith(f":{waited.alert_id}")
    }
    morning = datetime(2026, 12, 1, 22, tzinfo=UTC)  # 07:00 in Tokyo
    assert rows[tokyo[0]].status == "queued" and rows[tokyo[0]].next_attempt_at == morning
    assert rows[tokyo[0]].send_by == datetime(2026, 12, 2, 0, tzinfo=UTC)  # its expiry
    # London is not quiet yet, but will be at 22:00: the alert must go before.
    assert rows[utc[0]].next_attempt_at == now
    assert rows[utc[0]].send_by == datetime(2026, 12, 1, 22, tzinfo=UTC)


def test_the_api_raises_an_alert_and_refuses_a_second_with_409(db: Database, make_settings) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import httpx

    from digest.web.app import create_app

    settings = make_settings(database_url=db.url, admin_token="t" * 32)
    newsletter_settings(db, quiet_hours="off")
    readers(db, ["a@example.org", "b@example.org"])
    pid = post(db)
    # A post whose guid is "9999": the API names posts by id, so /api/posts/9999 is not it.
    decoy = post(db, "Decoy")
    with db.transaction() as session:
        session.execute(sa.text("UPDATE posts SET guid = '9999' WHERE id = :i"), {"i": decoy})
    app = create_app(settings, db)
    auth = {"Authorization": "Bearer " + "t" * 32}

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.post(f"/api/posts/{pid}/alert", headers=auth),
                await client.post(f"/api/posts/{pid}/alert", headers=auth, json={}),
                await client.post("/api/posts/9999/alert", headers=auth),
                await client.post(f"/api/posts/{pid}/alert", json={"newsletter": "nope"}),
                await client.post(
                    f"/api/posts/{pid}/alert", headers=auth, json={"newsletter": "nope"}
                ),
            ]

    made, again, missing, stranger, unknown = asyncio.run(calls())
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["queued"], body["held_budget"], body["held_quiet"]) == (2, 0, 0)
    assert body["source"] == "api" and body["newsletter"] == "digest"
    assert again.status_code == 409 and "already alerted" in again.json()["error"]
    assert missing.status_code == 404
    assert stranger.status_code == 401
    assert unknown.status_code == 404


def test_two_alerts_raised_at_once_count_each_readers_budget_one_after_the_other(
    db: Database, settings: Settings
) -> None:
    import threading

    newsletter_settings(db, quiet_hours="off", alert_budget=1)
    readers(db, [f"r{i}@example.org" for i in range(50)])
    posts = [str(post(db, "One")), str(post(db, "Two"))]
    start = threading.Barrier(2)
    reports = []

    def raise_one(pid: str) -> None:
        start.wait()
        reports.append(raise_alert(db, settings, pid, now=NOON))

    threads = [threading.Thread(target=raise_one, args=(p,)) for p in posts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Whichever went first took each reader's one alert of the day; the other was held.
    assert sorted((r.queued, r.held_budget) for r in reports) == [(0, 50), (50, 0)]
