"""The scheduler of ``digest serve``: due digests at each subscriber's local hour, feed polls,
and taking back the leases of dead workers, as APScheduler 3.x jobs on the service's loop.

One job checks every ``DIGEST_SCHEDULE_SECONDS`` (60 s by default) which subscribers are due
(``editions.run_due``), instead of one cron job per timezone and hour: the local-hour and
daylight-saving logic lives in ``periods``, where it is a pure function that tests can step
through, and a subscriber who changes their hour or zone needs no job rescheduled. A minute is
fine-grained enough for the zones whose offsets are not whole hours (India +5:30, Nepal +5:45),
and a check that finds nobody due is one indexed query. ``next_runs`` answers from the same
rules when each slot of subscribers will next get its digest (``digest status``).

Each tick first raises the alerts of posts that arrived in a newsletter's alert categories
(``alert_triggers``), once per post and newsletter whoever else ticks.

At most one digest per subscriber per period does not depend on this module: the store makes
``(subscriber_id, period_key)`` unique, so two schedulers (two ``digest serve`` processes by
mistake, APScheduler issue #160), a restart, a clock jump or ``digest send`` at the same moment
add nothing twice. Deferred deliveries need no job here: the delivery worker claims due
deferred rows itself (``outbox.claim``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from digest import announcements, desk_sessions, editions, list_counts, newsletters, outbox_tally
from digest.alert_triggers import raise_by_category
from digest.clock import utcnow
from digest.compose.render import Renderers
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.errors import DigestError, StoreUnavailable, first_line
from digest.hygiene import PassReport, why_not
from digest.hygiene import run as hygiene_pass
from digest.models import Subscriber, Subscription
from digest.newsletter_config import NewsletterConfig, configure
from digest.periods import period_for
from digest.planning import READERS, slot_filter
from digest.posts.poll import poll_all
from digest.states import SubscriberStatus
from digest.tracking_state import note as note_tracking

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]

DIGEST_JOB = "digests"
ALERT_JOB = "alerts"  # alerts by feed category: part of the digest job's tick, first
POLL_JOB = "feeds"
LEASE_JOB = "leases"
ANNOUNCE_WORK = "announcements"  # part of the digest tick, guarded on its own
LEASE_CHECK_SECONDS = 60
# List hygiene: hourly (a reader is asked or retired within the hour it falls due), only
# under per-reader tracking; the first pass waits a few minutes after a start.
HYGIENE_JOB = "hygiene"
HYGIENE_EVERY = timedelta(hours=1)
HYGIENE_FIRST_AFTER = timedelta(minutes=5)
STOP_GRACE = 20.0  # a job still running at shutdown gets this long; serve exits within 30 s

# coalesce: after the loop was blocked or the machine suspended, the backlog of missed ticks
#   runs once, not N times in a row.
# max_instances=1: a tick that outlasts the interval (a large edition) is not joined by a second
#   one competing for the same rows; APScheduler skips the overlapping tick with a warning.
# misfire_grace_time=None: a late tick still runs, however late; whether a digest is still due
#   is decided by the tick itself from the clock (``periods.is_due``, the send-by deadline), not
#   by the scheduler.
# None of these is what keeps a digest from going twice: the store's unique key does that.
JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
S = Subscriber.__table__  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class NextRun:
    """When the scheduler will next send digests to one slot of subscribers."""

    at: datetime
    cadence: str
    timezone: str
    send_hour: int
    subscribers: int
    newsletter: str = ""  # its slug


def next_runs(
    session: Session,
    settings: Settings,
    now: datetime,
    *,
    limit: int = 5,
    newsletter: NewsletterConfig | None = None,
) -> list[NextRun]:
    """The next digest sends of one newsletter or all, soonest first: each slot's due time in
    its current period if it has not had that period's digest, else in the next period."""
    runs = []
    configs = (
        [newsletter]
        if newsletter is not None
        else [configure(n, settings) for n in newsletters.listed(session)]
    )
    for config in configs:
        rows = session.execute(
            sa.select(U.c.cadence, S.c.timezone, S.c.send_hour, sa.func.count())
            .select_from(READERS)
            .where(U.c.newsletter_id == config.id, U.c.status == SubscriberStatus.ACTIVE.value)
            .group_by(U.c.cadence, S.c.timezone, S.c.send_hour)
        ).all()
        day = config.weekly_day
        for cadence, tz, hour, count in rows:
            period = period_for(cadence, tz, hour, now, weekly_day=day)
            pending = session.execute(
                sa.select(sa.func.count())
                .select_from(READERS)
                .where(slot_filter(config.id, cadence, tz, hour, period, scheduled=True))
            ).scalar_one()
            if not pending or now >= period.end:
                period = period_for(cadence, tz, hour, period.end, weekly_day=day)
            runs.append(NextRun(max(period.due, now), cadence, tz, hour, count, config.slug))
    return sorted(runs, key=lambda r: (r.at, r.newsletter, r.cadence, r.timezone))[:limit]


def run_digests(
    db: Database, settings: Settings, now: datetime, *, renderers: Renderers | None = None
) -> list[editions.EditionReport]:
    """The digest job's work at ``now``: every edition due, each logged in one line.

    The scheduler keeps its renderers (one per newsletter) for its life: most ticks find
    nobody due, and compiling the templates each time would be most of their cost.
    """
    # List hygiene, in a block of its own: the tracking mode mail is made under, and since
    # when (a primary-key read per tick; a write only when it changed).
    with db.transaction() as session:
        note_tracking(session, settings.tracking, now)
    reports = editions.run_due(db, settings, now, renderers=renderers)
    for report in reports:
        log.info(
            "edition made",
            extra={
                "edition": report.key,
                "cadence": report.cadence,
                "recipients": report.recipients,
                "skipped": report.skipped,
                "bodies": report.bodies,
            },
        )
    return reports


def take_back_leases(db: Database, now: datetime) -> int:
    """Return deliveries leased by workers that died (lease run out) to the queue."""
    with db.transaction() as session:
        n = outbox.requeue_expired_leases(session, now)
    if n:
        log.info("expired leases taken back", extra={"deliveries": n})
    # The same minute's housekeeping: the list's counts folded back to one row per key.
    with db.transaction() as session:
        list_counts.compact(session)
    return n


def sweep_desk_sessions(db: Database, settings: Settings, now: datetime) -> int:
    """Delete the desk sessions that ran out (a session is also refused and deleted when it
    comes back late; this clears those that never come back), and count the outbox for the
    desk's Today page (``outbox_tally``): once a minute here rather than on every view."""
    idle = timedelta(minutes=settings.desk_idle_minutes)
    with db.transaction() as session:
        outbox_tally.refresh(session, now)
        return desk_sessions.sweep(session, now, idle=idle)


def run_hygiene(db: Database, settings: Settings, now: datetime) -> list[PassReport]:
    """List hygiene's pass at ``now``: each newsletter's questions and retirements, logged in
    one line where it did something."""
    reports = hygiene_pass(db, settings, now)
    for report in reports:
        if report.asked or report.retired or report.answered:
            log.info(
                "list hygiene",
                extra={
                    "newsletter": report.newsletter,
                    "asked": len(report.asked),
                    "retired": len(report.retired),
                    "answered": len(report.answered),
                },
            )
    return reports


async def poll_feeds(db: Database, settings: Settings) -> tuple[int, int]:
    """Poll every feed once; returns (ok, failed). One bad feed never stops the others."""
    results = await poll_all(db, settings)
    failed = [r for r in results if not r.ok]
    for r in failed:
        log.warning("feed poll failed", extra={"feed": r.url, "error": r.error})
    if results:
        log.info(
            "feeds polled",
            extra={
                "feeds": len(results),
                "failed": len(failed),
                "new_posts": sum(r.inserted for r in results),
            },
        )
    return len(results) - len(failed), len(failed)


class Scheduler:
    """The service's jobs on an ``AsyncIOScheduler``; ``clock`` is what the jobs take as now.

    Start it inside the running event loop; ``stop()`` lets a job in progress finish (the
    store work runs in a thread and must not be cut in the middle of a transaction).
    """

    def __init__(
        self, settings: Settings, db: Database, *, clock: Clock = utcnow, poll: bool = True
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.poll = poll
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self.ticks = 0  # digest checks done: what tests wait on instead of sleeping
        self._renderers: Renderers | None = None
        self._running: set[asyncio.Future[Any]] = set()

    def start(self) -> None:
        """Add the jobs and start ticking; the first digest check runs at once, so a restart
        catches up with whoever became due while the service was down."""
        start = datetime.now(UTC)
        self.scheduler.add_job(
            self.digests_job,
            IntervalTrigger(seconds=self.settings.schedule_seconds, timezone=UTC),
            id=DIGEST_JOB,
            name="due digests",
            next_run_time=start,
        )
        self.scheduler.add_job(
            self.leases_job,
            IntervalTrigger(seconds=LEASE_CHECK_SECONDS, timezone=UTC),
            id=LEASE_JOB,
            name="expired leases",
            next_run_time=start + timedelta(seconds=LEASE_CHECK_SECONDS),
        )
        if self.poll:
            self.scheduler.add_job(
                self.poll_job,
                IntervalTrigger(minutes=self.settings.poll_minutes, timezone=UTC),
                id=POLL_JOB,
                name="feed polls",
                next_run_time=start,
            )
        # List hygiene, in a block of its own.
        if why_not(self.settings) is None:
            self.scheduler.add_job(
                self.hygiene_job,
                IntervalTrigger(seconds=HYGIENE_EVERY.total_seconds(), timezone=UTC),
                id=HYGIENE_JOB,
                name="list hygiene",
                next_run_time=start + HYGIENE_FIRST_AFTER,
            )
        self.scheduler.start()
        log.info(
            "scheduler started",
            extra={
                "tick_seconds": self.settings.schedule_seconds,
                "poll_minutes": self.settings.poll_minutes if self.poll else None,
            },
        )

    async def stop(self, timeout: float = STOP_GRACE) -> None:
        """Stop ticking, then wait (up to ``timeout``) for the jobs in progress."""
        if self.scheduler.running:
            self.scheduler.pause()
        if self._running:
            _done, pending = await asyncio.wait(set(self._running), timeout=timeout)
            if pending:
                log.warning("jobs still running at shutdown", extra={"jobs": len(pending)})
        if self.scheduler.running:
            # wait=False: the asyncio executor cannot wait; we waited for our own work above.
            self.scheduler.shutdown(wait=False)
            # AsyncIOScheduler shuts down in a loop callback; let it run before returning.
            await asyncio.sleep(0)
        log.info("scheduler stopped")

    # -- the jobs ----------------------------------------------------------------------------

    async def digests_job(self) -> list[editions.EditionReport]:
        """Raise the alerts of newly arrived posts in alert categories, then make every edition
        due now (in a thread: the store is synchronous)."""
        now = self.clock()
        work = asyncio.to_thread(self._digests, now)
        result = await self._guarded(DIGEST_JOB, work)
        # Scheduled announcements ride the same tick (their local hours are checked alike),
        # guarded on their own so a bad one never holds up digests; after a failed digest
        # check (the store down) the next tick tries both, with one line logged, not two.
        if result is not None:
            due = asyncio.to_thread(announcements.queue_due, self.db, self.settings, now)
            await self._guarded(ANNOUNCE_WORK, due)
        self.ticks += 1
        return result or []

    def _digests(self, now: datetime) -> list[editions.EditionReport]:
        # Alerts first: breaking news must not wait behind a large edition, and an edition
        # made after them knows which posts went out as alerts.
        try:
            raise_by_category(self.db, self.settings, now)
        except StoreUnavailable:
            raise  # the digests cannot be made either: the tick fails, in one line
        except (DigestError, SQLAlchemyError) as exc:
            # A broken alert template must not stop the digests.
            error = f"{type(exc).__name__}: {first_line(exc)}"
            log.warning("job failed", extra={"job": ALERT_JOB, "error": error})
        if self._renderers is None:
            self._renderers = Renderers(self.settings)
        return run_digests(self.db, self.settings, now, renderers=self._renderers)

    async def leases_job(self) -> int:
        """Take back the leases that ran out; clear the desk sessions that did."""
        now = self.clock()
        taken = await self._guarded(LEASE_JOB, asyncio.to_thread(take_back_leases, self.db, now))
        if taken is not None:  # with the store down, one line logged, not two
            sweep = asyncio.to_thread(sweep_desk_sessions, self.db, self.settings, now)
            await self._guarded(LEASE_JOB, sweep)
        return taken or 0

    async def poll_job(self) -> tuple[int, int]:
        """Poll the feeds."""
        return await self._guarded(POLL_JOB, poll_feeds(self.db, self.settings)) or (0, 0)

    async def hygiene_job(self) -> list[PassReport]:
        """One pass of list hygiene over every newsletter that has it on."""
        now = self.clock()
        work = asyncio.to_thread(run_hygiene, self.db, self.settings, now)
        return await self._guarded(HYGIENE_JOB, work) or []

    async def _guarded(self, name: str, work: Awaitable[T]) -> T | None:
        """Run one job's work to the end and log its failure in one line instead of raising.

        The work is shielded: shutting the scheduler down cancels the job's coroutine, but a
        transaction already running in its thread finishes, and ``stop()`` waits for it.
        """
        task = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Shutdown cancelled the job's coroutine; its work goes on and stop() waits for it.
            return None
        except (DigestError, SQLAlchemyError) as exc:
            # The store was down or busy: the next tick tries again; nothing was half-written
            # because each run is one transaction per edition.
            log.warning(
                "job failed",
                extra={"job": name, "error": f"{type(exc).__name__}: {first_line(exc)}"},
            )
        except Exception:
            log.exception("job failed unexpectedly", extra={"job": name})
        return None
