"""``clicks.fold`` on both stores: every event counted once however many processes fold at
the same time, bursts judged whole, and per reader only what the mode and the reader allow."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from digest.clicks import fold
from digest.config import Settings
from digest.db import Database
from digest.models_engagement import ClickEvent
from digest.tracking import reader_tag
from digest.web.click_recorder import ClickRecorder
from tests.support.clicks import add_reader

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
EVENTS = ClickEvent.__table__  # type: ignore[attr-defined]


def _events(db: Database, rows: list[dict[str, Any]]) -> None:
    base = {"url_key": "", "url": "", "copy_tag": None, "subscriber_id": None, "kind": "click",
            "machine": False, "proxy": False}  # fmt: skip
    with db.transaction() as session:
        session.execute(sa.insert(EVENTS), [{**base, **r} for r in rows])


def _click(mail: str, link: int, at: float, copy: str | None, **more: Any) -> dict[str, Any]:
    url = f"https://news.example/{link}"
    return {"mail": mail, "url_key": f"{link:032x}", "url": url, "copy_tag": copy,
            "at": T0 + timedelta(seconds=at), **more}  # fmt: skip


def _rows(db: Database, query: str) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text(query)))


def test_folds_running_at_once_count_every_event_once(db: Database, settings: Settings) -> None:
    events = [_click("e1", i % 7, i * 5.0, f"{i:012d}", machine=i % 3 == 0) for i in range(600)]
    _events(db, events)
    later = T0 + timedelta(hours=2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fold(db, settings, later)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    [(human, machine)] = _rows(db, "SELECT sum(human), sum(machine) FROM link_clicks")
    assert (human, machine) == (400, 200)
    assert _rows(db, "SELECT count(*) FROM click_events") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM mail_copies WHERE human_click_at IS NOT NULL") == [
        (400,)
    ]


def test_a_burst_waits_until_it_is_over_then_counts_as_a_machine(
    db: Database, settings: Settings
) -> None:
    _events(db, [_click("e1", 1, 0.0, "aaaaaaaaaaaa"), _click("e1", 2, 3.0, "aaaaaaaaaaaa")])
    # 7 s on, the first click has settled, but the copy clicked again 3 s later: it waits.
    assert fold(db, settings, T0 + timedelta(seconds=7)).counted == 0
    _events(db, [_click("e1", 3, 3.5, "aaaaaaaaaaaa")])  # the third link of the burst arrives
    done = fold(db, settings, T0 + timedelta(seconds=30))
    assert (done.counted, done.waiting) == (3, 0)
    assert _rows(db, "SELECT sum(human), sum(machine) FROM link_clicks") == [(0, 3)]


def test_one_readers_clicks_in_two_mails_are_not_a_burst(make_settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url, tracking="per-reader")
    sid = add_reader(db)
    _events(
        db,
        [_click(mail, 1, 0.2 * i, "1", subscriber_id=sid) for i, mail in enumerate(["e1", "a1"])],
    )
    fold(db, settings, T0 + timedelta(minutes=1))
    assert _rows(db, "SELECT mail, human, machine FROM link_clicks ORDER BY mail") == [
        ("a1", 1, 0),
        ("e1", 1, 0),
    ]


@pytest.mark.parametrize("opted_out", [True, False])
def test_a_reader_who_opted_out_since_is_not_counted(
    make_settings,  # type: ignore[no-untyped-def]
    db: Database,
    opted_out: bool,
) -> None:
    settings = make_settings(database_url=db.url, tracking="per-reader")
    sid = add_reader(db, opted_out=opted_out)
    _events(db, [_click("e1", 1, 0.0, "1", subscriber_id=sid)])
    fold(db, settings, T0 + timedelta(minutes=1))
    clicks = _rows(db, "SELECT subscriber_id FROM reader_clicks")
    last = _rows(db, "SELECT last_click_at FROM subscriptions")
    if opted_out:
        assert (clicks, last) == ([], [(None,)])
        assert _rows(db, "SELECT count(*) FROM link_clicks") == [(0,)]
    else:
        assert clicks == [(sid,)] and last[0][0] is not None
    assert _rows(db, "SELECT count(*) FROM click_events") == [(0,)]


def test_aggregate_folding_drops_a_readers_id_recorded_before(
    db: Database, settings: Settings
) -> None:
    sid = add_reader(db)
    _events(db, [_click("e1", 1, 0.0, "1", subscriber_id=sid)])
    fold(db, settings, T0 + timedelta(minutes=1))  # settings: aggregate, the default
    assert _rows(db, "SELECT human FROM link_clicks") == [(1,)]
    assert _rows(db, "SELECT count(*) FROM mail_copies") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM reader_clicks") == [(0,)]


def test_a_full_buffer_drops_new_clicks_and_counts_them(db: Database, settings: Settings) -> None:
    recorder = ClickRecorder(db, settings, max_buffer=3, flush_seconds=60)
    for i in range(10):  # the store "behind": nothing is flushed for a minute
        recorder.record(_click("e1", i, 0.0, None))
    assert recorder.dropped == 7
    recorder.close()  # stores what it holds (and folds it, should it have settled)
    stored = _rows(db, "SELECT url FROM click_events UNION ALL SELECT url FROM link_clicks")
    assert sorted(stored) == [(f"https://news.example/{i}",) for i in range(3)]


def test_an_erasure_takes_the_readers_clicks_and_leaves_the_counts(
    make_settings,  # type: ignore[no-untyped-def]
    db: Database,
) -> None:
    from digest import subscribers

    settings = make_settings(database_url=db.url, tracking="per-reader")
    sid = add_reader(db)
    tag = reader_tag(sid)
    _events(db, [_click("e1", 1, 0.0, tag, subscriber_id=sid)])
    fold(db, settings, T0 + timedelta(minutes=1))
    assert _rows(db, "SELECT copy_tag FROM mail_copies") == [(tag,)]
    _events(db, [_click("e1", 2, 90.0, tag, subscriber_id=sid)])  # not folded yet
    with db.transaction() as session:
        subscribers.erase(session, "reader@example.com")
    for table in ("reader_clicks", "mail_copies", "click_events"):
        assert _rows(db, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert _rows(db, "SELECT human FROM link_clicks") == [(1,)]
