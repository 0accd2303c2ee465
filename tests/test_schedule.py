"""The scheduler: digests at each subscriber's local hour, through daylight-saving changes, at
most once per period whatever runs twice, and never a day late.

The clock is injected: the job functions take ``now``, and time-machine moves the store's own
timestamps with it. Sends go to a real aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from digest import editions, schedule, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.running import drain, run_worker
from digest.models import Delivery, Subscriber
from digest.periods import is_due, period_for
from digest.posts import feeds, store
from digest.states import DeliveryStatus
from tests.support.clock import midday
from tests.support.smtp_server import SmtpServer

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]
REPO = Path(__file__).resolve().parents[1]


def add_people(db: Database, people: list[tuple[str, str, int, str]]) -> None:
    """Subscribers active since the day before: (email, timezone, send hour, cadence).

    A day earlier, because the scheduler holds back a reader who became active after their
    send hour today (``test_first_digest.py``); these tests are about who is due, not who joined.
    """
    with time_machine.travel(utcnow() - timedelta(days=1), tick=False), db.transaction() as session:
        for email, tz, hour, cadence in people:
            subscriptions.add(
                session, email, timezone=tz, send_hour=hour, cadence=cadence, confirmed=True
            )


def add_post(db: Database, title: str) -> None:
    """A post first seen now (the frozen clock's now)."""
    with db.transaction() as session:
        slug = "".join(c if c.isalnum() else "-" for c in title.lower())
        store.add_post(session, title=title, url=f"https://news.example/{slug}")


def deliveries(db: Database) -> list[sa.Row]:
    """Every digest row with its subscriber's address."""
    with db.transaction() as session:
        return list(
            session.execute(
                sa.select(
                    S.c.email,
                    D.c.period_key,
                    D.c.status,
                    D.c.created_at,
                    D.c.send_by,
                    D.c.message_id,
                    D.c.last_reply,
                ).join(S, S.c.id == D.c.subscriber_id)
            )
        )


# -- daylight saving -------------------------------------------------------------------------

DST_DAYS = [
    pytest.param("Europe/Paris", date(2026, 3, 29), id="paris-spring-forward"),
    pytest.param("Europe/Paris", date(2026, 10, 25), id="paris-fall-back"),
    pytest.param("America/New_York", date(2026, 3, 8), id="new-york-spring-forward"),
    pytest.param("America/New_York", date(2026, 11, 1), id="new-york-fall-back"),
]
# 1 and 2 fall in the hour that is skipped or repeated in one zone or the other.
HOURS = [0, 1, 2, 3, 7, 23]


def first_instant_at_or_after(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The first real instant whose local wall time on ``day`` is ``hour``:00 or later,
    worked out minute by minute from zoneinfo alone (not from ``periods``)."""
    t = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    while True:
        local = t.astimezone(zone)
        if local.date() == day and local.hour >= hour:
            return t
        t += timedelta(minutes=1)


@pytest.mark.parametrize(("zone_name", "day"), DST_DAYS)
def test_dst_day_one_digest_per_subscriber_at_their_local_hour(
    db: Database, make_settings, zone_name: str, day: date
) -> None:
    settings: Settings = make_settings(database_url=db.url, weekly_day="sunday")
    zone = ZoneInfo(zone_name)
    people = [(f"d{h}@example.com", zone_name, h, "daily") for h in HOURS]
    people += [(f"w{h}@example.com", zone_name, h, "weekly") for h in (2, 7)]
    add_people(db, people)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    assert end - start != timedelta(hours=24)  # really a day with a clock change

    now = start
    step = 0
    while now < end:
        with time_machine.travel(now, tick=False):
            if step % 12 == 0:  # a new story every hour, so every due digest has news
                add_post(db, f"story {step}")
            schedule.run_digests(db, settings, now)
        now += timedelta(minutes=5)
        step += 1

    rows = deliveries(db)
    per_person = defaultdict(list)
    for row in rows:
        per_person[row.email].append(row)
    assert set(per_person) == {p[0] for p in people}
    for email, _tz, hour, cadence in people:
        mine = per_person[email]
        assert len(mine) == 1, f"{email}: {len(mine)} digests on {day}"
        row = mine[0]
        assert row.status == DeliveryStatus.QUEUED.value
        iso = day.isocalendar()
        expected_key = (
            f"daily:{day.isoformat()}"
            if cadence == "daily"
            else f"weekly:{iso.year}-W{iso.week:02d}"
        )
        assert row.period_key == f"1/{expected_key}"
        due = first_instant_at_or_after(day, hour, zone)
        # Made at the first 5-minute tick at or after the local hour, never before it.
        assert due <= row.created_at < due + timedelta(minutes=5)
        assert row.send_by == end


@hyp_settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(
        [
            "Europe/Paris",
            "America/New_York",
            "Asia/Kolkata",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
        ]
    ),
    day=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    hour=st.integers(min_value=0, max_value=23),
    minutes=st.sampled_from([1, 5]),
)
def test_the_due_rule_fires_once_per_local_day(
    zone_name: str, day: date, hour: int, minutes: int
) -> None:
    """Ticking every few minutes through any local day, the scheduler's rule (``is_due`` of the
    current period) makes that day's digest due from one tick on, never before the local hour,
    and never the next day's under the same key."""
    zone = ZoneInfo(zone_name)
    t = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    due_keys: list[str] = []
    first_due: datetime | None = None
    while t < end:
        period = period_for("daily", zone_name, hour, t)
        assert period.key == f"daily:{day.isoformat()}"
        if is_due(period, t):
            due_keys.append(period.key)
            first_due = first_due or t
        t += timedelta(minutes=minutes)
    assert set(due_keys) == {f"daily:{day.isoformat()}"}
    assert first_due is not None
    assert first_due.astimezone(zone).hour >= hour


# -- at most once per period -------------------------------------------------------------------


def test_ticks_and_a_send_at_once_in_threads_send_once(db: Database, make_settings) -> None:
    settings = make_settings(database_url=db.url)
    now = utcnow()
    zone, hour = midday(now)  # due now, and for hours yet
    add_people(db, [(f"t{i}@example.com", zone, hour, "daily") for i in range(25)])
    add_post(db, "breaking")
    now = utcnow()  # after the post: a post first seen later is not news yet
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def tick() -> None:
        barrier.wait()
        try:
            schedule.run_digests(db, settings, now)
        except Exception as exc:  # collected: an exception in a thread would be lost
            errors.append(exc)

    def send_now() -> None:  # what `digest send` does, at the same moment
        barrier.wait()
        try:
            editions.make_edition(db, settings, cadence="daily", now=now, due_only=False)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (tick, tick, tick, send_now)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = deliveries(db)
    assert Counter(r.email for r in rows) == {f"t{i}@example.com": 1 for i in range(25)}
    assert Counter(r.status for r in rows) == {DeliveryStatus.QUEUED.value: 25}, errors
    assert errors == []  # nobody even failed: the losers of the race found the rows taken


async def test_two_schedulers_in_one_process_send_once(db: Database, make_settings) -> None:
    """Two services by mistake (APScheduler #160): both due jobs run at the same moment."""
    settings = make_settings(database_url=db.url)
    now = utcnow()
    zone, hour = midday(now)  # due now, and for hours yet
    add_people(db, [(f"s{i}@example.com", zone, hour, "daily") for i in range(10)])
    add_post(db, "breaking")
    now = utcnow()
    first = schedule.Scheduler(settings, db, clock=lambda: now)
    second = schedule.Scheduler(settings, db, clock=lambda: now)
    reports = await asyncio.gather(first.digests_job(), second.digests_job())
    made = sum(r.recipients for rs in reports for r in rs)
    assert made == 10
    assert len(deliveries(db)) == 10


TICK_SCRIPT = """
import sys
from datetime import datetime
from digest import schedule
from digest.config import load_settings
from digest.db import Database
url, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
settings = load_settings(database_url=url, secret_key="k" * 40, smtp_url="file:" + sys.argv[3])
db = Database(url)
reports = schedule.run_digests(db, settings, now)
print(sum(r.recipients for r in reports))
"""


def test_two_processes_ticking_at_once_send_once(
    db: Database, make_settings, tmp_path: Path
) -> None:
    make_settings(database_url=db.url)  # clears DIGEST_* from the environment
    now = utcnow()
    zone, hour = midday(now)  # due now, and for hours yet
    add_people(db, [(f"p{i}@example.com", zone, hour, "daily") for i in range(40)])
    add_post(db, "breaking")
    now = utcnow()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TICK_SCRIPT, db.url, now.isoformat(), str(tmp_path / "out")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outputs]
    assert sum(int(o[0].strip() or 0) for o in outputs) == 40
    rows = deliveries(db)
    assert Counter(r.email for r in rows) == {f"p{i}@example.com": 1 for i in range(40)}


def test_a_later_tick_in_the_same_period_adds_nothing(db: Database, make_settings) -> None:
    """A restart, a clock set back, or a second tick an hour later: the period is taken."""
    settings = make_settings(database_url=db.url)
    day = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    add_people(db, [("x@example.com", "UTC", 7, "daily")])
    with time_machine.travel(day - timedelta(hours=1), tick=False):
        add_post(db, "one")
    for now in (day, day + timedelta(hours=3), day + timedelta(minutes=1), day):
        with time_machine.travel(now, tick=False):
            add_post(db, f"more news {now.isoformat()}")
            schedule.run_digests(db, settings, now)
    assert len(deliveries(db)) == 1


# -- restarts and the send-by deadline ---------------------------------------------------------


async def test_restart_in_the_middle_of_a_send_serves_everybody_once(
    db: Database, make_settings, smtp_server: SmtpServer
) -> None:
    settings = make_settings(
        database_url=db.url, smtp_url=smtp_server.url, smtp_connections=2, lease_seconds=60
    )
    now = utcnow()
    zone, hour = midday(now)  # due now, and for hours yet
    people = [f"r{i:02d}@example.com" for i in range(30)]
    add_people(db, [(e, zone, hour, "daily") for e in people])
    add_post(db, "breaking")

    # The first life of the service: the tick, then a worker stopped after a few messages.
    first = schedule.Scheduler(settings, db)
    reports = await first.digests_job()
    assert sum(r.recipients for r in reports) == 30
    stop = asyncio.Event()

    async def stop_after_some() -> None:
        while len(smtp_server.handler.received) < 8:
            await asyncio.sleep(0.01)
        stop.set()

    watcher = asyncio.ensure_future(stop_after_some())
    await run_worker(settings, db, stop, batch_size=5)
    await watcher
    await first.stop()
    # ... and a worker on another host that died holding a lease.
    with db.transaction() as session:
        crashed = outbox.claim(
            session, owner="elsewhere:1:dead", limit=4, lease=timedelta(seconds=60)
        )
    assert crashed
    sent_before = len(smtp_server.handler.received)
    assert 8 <= sent_before < 30

    # The second life: the due job runs again (same period), the lease job finds the dead
    # worker's lease run out, and a new worker drains the rest.
    later = now + timedelta(minutes=2)
    second = schedule.Scheduler(settings, db, clock=lambda: later)
    assert await second.digests_job() == []
    assert await second.leases_job() == len(crashed)
    await run_worker(settings, db, asyncio.Event(), until_empty=True)

    got = Counter(r.rcpt_tos[0] for r in smtp_server.handler.received)
    assert got == dict.fromkeys(people, 1)
    statuses = Counter(r.status for r in deliveries(db))
    assert statuses == {DeliveryStatus.SENT.value: 30}


def test_a_digest_that_missed_its_day_is_skipped_not_sent_late(
    db: Database, make_settings, smtp_server: SmtpServer
) -> None:
    """listmonk #1801: the service was down from 07:05 until after midnight."""
    settings = make_settings(database_url=db.url, smtp_url=smtp_server.url)
    monday = datetime(2026, 6, 1, tzinfo=UTC)
    add_people(db, [("late@example.com", "Europe/Paris", 7, "daily")])
    paris_seven = datetime(2026, 6, 1, 7, 5, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    with time_machine.travel(monday, tick=False):
        add_post(db, "monday news")
    with time_machine.travel(paris_seven, tick=False):
        schedule.run_digests(db, settings, paris_seven)
    [queued] = deliveries(db)
    assert queued.status == DeliveryStatus.QUEUED.value

    # Back up at 00:30 Paris time on Tuesday: Monday's digest is past its send-by time.
    tuesday_early = datetime(2026, 6, 2, 0, 30, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    with time_machine.travel(tuesday_early, tick=True):
        schedule.run_digests(db, settings, tuesday_early)  # Tuesday is not due before 07:00
        report = drain(settings, db)
    assert report.sent == 0
    assert smtp_server.handler.received == []
    [skipped] = deliveries(db)
    assert skipped.status == DeliveryStatus.SKIPPED.value
    assert "send-by" in (skipped.last_reply or "")

    # Tuesday's own digest goes out on Tuesday, as usual.
    tuesday_seven = datetime(2026, 6, 2, 7, 1, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    with time_machine.travel(tuesday_seven - timedelta(hours=2), tick=False):
        add_post(db, "tuesday news")
    with time_machine.travel(tuesday_seven, tick=True):
        schedule.run_digests(db, settings, tuesday_seven)
        drain(settings, db)
    rows = {r.period_key: r for r in deliveries(db)}
    assert rows["1/daily:2026-06-01"].status == DeliveryStatus.SKIPPED.value
    assert rows["1/daily:2026-06-02"].status == DeliveryStatus.SENT.value
    [received] = smtp_server.handler.received
    assert received.message_id == rows["1/daily:2026-06-02"].message_id


# -- the scheduler itself -----------------------------------------------------------------------


async def wait_for(condition, what: str, limit: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until true; fail naming ``what`` after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def test_the_running_scheduler_ticks_and_a_restart_adds_nothing(
    db: Database, make_settings
) -> None:
    settings = make_settings(database_url=db.url, schedule_seconds=1)
    now = utcnow()
    zone, hour = midday(now)  # due now, and for hours yet
    add_people(db, [(f"a{i}@example.com", zone, hour, "daily") for i in range(5)])
    add_post(db, "news")

    first = schedule.Scheduler(settings, db, poll=False)
    first.start()
    jobs = {job.id: job for job in first.scheduler.get_jobs()}
    assert set(jobs) == {schedule.DIGEST_JOB, schedule.LEASE_JOB}
    for job in jobs.values():
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    await wait_for(lambda: len(deliveries(db)) == 5, "the first tick's deliveries")
    await first.stop()
    assert not first.scheduler.running

    second = schedule.Scheduler(settings, db, poll=False)
    second.start()
    await wait_for(lambda: second.ticks >= 3, "three ticks of the restarted scheduler")
    await second.stop()
    assert Counter(r.email for r in deliveries(db)) == {f"a{i}@example.com": 1 for i in range(5)}


async def test_a_tick_with_the_store_down_logs_one_line_and_carries_on(
    make_settings, caplog: pytest.LogCaptureFixture
) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    settings = make_settings(database_url=url)
    down = Database(url)
    ticker = schedule.Scheduler(settings, down)
    with caplog.at_level("WARNING", logger="digest.schedule"):
        assert await ticker.digests_job() == []
        assert await ticker.leases_job() == 0
    failures = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert [r.job for r in failures] == [schedule.DIGEST_JOB, schedule.LEASE_JOB]  # type: ignore[attr-defined]
    assert all("cannot use the database" in r.error for r in failures)  # type: ignore[attr-defined]
    down.dispose()


@pytest.fixture
def feed_site(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real HTTP server on loopback serving the sample feed at /feed.xml."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(REPO / "src" / "digest" / "samples" / "sample_feed.xml", site / "feed.xml")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_the_poll_job_imports_posts_and_survives_a_broken_feed(
    db: Database, make_settings, feed_site: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url=db.url, allow_private_feeds=True)
    with db.transaction() as session:
        feeds.add_feed(session, f"{feed_site}/feed.xml")
        feeds.add_feed(session, f"{feed_site}/missing.xml")
    ticker = schedule.Scheduler(settings, db)
    with caplog.at_level("INFO", logger="digest.schedule"):
        assert await ticker.poll_job() == (1, 1)
    with db.transaction() as session:
        assert len(store.list_posts(session)) > 0
        failing = [f.url for f in feeds.list_feeds(session) if f.failing_since is not None]
    assert failing == [f"{feed_site}/missing.xml"]
    logged = [r for r in caplog.records if r.getMessage() == "feed poll failed"]
    assert [r.feed for r in logged] == [f"{feed_site}/missing.xml"]  # type: ignore[attr-defined]
