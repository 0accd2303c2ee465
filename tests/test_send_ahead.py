"""A manual ``digest send`` east of UTC, made visible: who gets a digest ahead of their local
send hour, who is left out and why, and ``--due-only`` for the readers whose hour has come.

Just after midnight in Tokyo (15:04 UTC) a manual send uses up Tokyo's new day: readers there
get the day's digest at 00:04 local and none at 07:00. Through the real entry point, on both
stores, with the clock fixed by time-machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from digest import editions, schedule, subscriptions
from digest.config import Settings
from digest.db import Database
from digest.models import Delivery, Subscriber
from digest.posts import store as posts
from tests.support.cli import Result, run

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
MORNING = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tokyo 17:00, Paris 09:00
AFTER_TOKYO_MIDNIGHT = datetime(2026, 12, 1, 15, 4, tzinfo=UTC)  # Tokyo 00:04 on Dec 2
TOKYO_SEVEN = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 07:00 on Dec 2 in Tokyo


def _news(db: Database, title: str) -> None:
    with db.transaction() as s:
        posts.add_post(s, title=title, url=f"https://news.example/{title.replace(' ', '-')}")


@pytest.fixture
def readers(cli_env: Database, make_settings) -> Iterator[tuple[Database, Settings]]:  # type: ignore[no-untyped-def]
    """tokyo (07:00), paris and sporty (Paris 12:00; sporty wants only Sports), early (UTC
    07:00, had today's digest at 08:00 UTC); news after the morning's edition."""
    db = cli_env
    settings = make_settings(database_url=db.url)
    with time_machine.travel(MORNING - timedelta(days=2), tick=False), db.transaction() as s:
        subscriptions.add(
            s, "tokyo@example.com", timezone="Asia/Tokyo", send_hour=7, confirmed=True
        )
        subscriptions.add(
            s, "paris@example.com", timezone="Europe/Paris", send_hour=12, confirmed=True
        )
        subscriptions.add(
            s,
            "sporty@example.com",
            timezone="Europe/Paris",
            send_hour=12,
            topics="Sports",
            confirmed=True,
        )
        subscriptions.add(s, "early@example.com", timezone="UTC", send_hour=7, confirmed=True)
    with time_machine.travel(MORNING - timedelta(hours=1), tick=False):
        _news(db, "overnight news")
    with time_machine.travel(MORNING, tick=False):
        schedule.run_digests(db, settings, MORNING)  # early and tokyo (its Dec 1) get theirs
    with time_machine.travel(AFTER_TOKYO_MIDNIGHT - timedelta(hours=1), tick=False):
        _news(db, "afternoon news")
    with time_machine.travel(AFTER_TOKYO_MIDNIGHT, tick=True):
        yield db, settings


def _periods(db: Database) -> dict[str, list[str]]:
    with db.transaction() as s:
        rows = s.execute(
            sa.select(S.c.email, D.c.period_key)
            .join(S, S.c.id == D.c.subscriber_id)
            .order_by(D.c.period_key)
        )
        got: dict[str, list[str]] = {}
        for email, key in rows:
            got.setdefault(email, []).append(key)
        return got


def _json(r: Result) -> dict:  # type: ignore[type-arg]
    assert r.code == 0, r.err
    return json.loads(r.out)  # type: ignore[no-any-return]


def test_a_dry_run_says_who_is_sent_to_ahead_of_their_hour_and_who_is_left_out(
    readers, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    r = run(capsys, "send", "--dry-run")
    assert r.code == 0, r.err
    assert "2 would get a digest, 1 would be skipped" in r.out
    assert "1 of them ahead of their local send hour" in r.out
    assert "tokyo@example.com (Asia/Tokyo, ahead of their 07:00 local send hour)" in r.out
    assert "paris@example.com (Europe/Paris):" in r.out
    assert (
        "left out: 1 already had this period's digest; 1 nothing new since their last digest"
        in r.out
    )
    data = _json(run(capsys, "send", "--dry-run", "--json"))
    assert (data["recipients"], data["ahead"]) == (2, 1)
    assert data["left_out"]["already had this period's digest"] == 1
    assert data["left_out"]["nothing new since their last digest"] == 1
    tokyo = next(g for g in data["groups"] if g["timezone"] == "Asia/Tokyo")
    assert tokyo["ahead"] is True and tokyo["period"] == "daily:2026-12-02"


def test_a_manual_send_says_it_used_up_tokyos_new_day(
    readers, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    db, settings = readers
    r = run(capsys, "send")
    assert r.code == 0, r.err
    assert "2 digests queued" in r.out
    assert "1 of them ahead of their local send hour" in r.out
    assert "left out: 1 already had this period's digest" in r.out
    assert _periods(db)["tokyo@example.com"] == ["1/daily:2026-12-01", "1/daily:2026-12-02"]
    # ... which is why nothing goes to Tokyo at 07:00 local.
    _news(db, "evening news")
    assert editions.run_due(db, settings, TOKYO_SEVEN) == []
    assert len(_periods(db)["tokyo@example.com"]) == 2


def test_due_only_sends_to_readers_whose_local_hour_has_come(
    readers, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    db, settings = readers
    dry = run(capsys, "send", "--due-only", "--dry-run")
    assert "1 would get a digest" in dry.out and "tokyo" not in dry.out.split("left out")[0]
    assert "1 their local send hour has not come" in dry.out
    data = _json(run(capsys, "send", "--due-only", "--json"))
    assert (data["recipients"], data["ahead"]) == (1, 0)
    assert data["left_out"]["their local send hour has not come"] == 1
    assert _periods(db)["tokyo@example.com"] == ["1/daily:2026-12-01"]
    assert _periods(db)["paris@example.com"] == ["1/daily:2026-12-01"]
    # Tokyo's Dec 2 digest goes at 07:00 Tokyo time, from the scheduler.
    _news(db, "evening news")
    [report] = editions.run_due(db, settings, TOKYO_SEVEN)
    assert report.recipients == 1
    assert _periods(db)["tokyo@example.com"] == ["1/daily:2026-12-01", "1/daily:2026-12-02"]
