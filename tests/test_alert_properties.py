"""The breaking-news lane's promises, over random alert times, zones, budgets, quiet hours,
outages and digests, against the real store (SQLite), outbox and scheduler code:

- no reader gets more alerts than the budget in any of their local days;
- no alert goes out in the reader's quiet hours;
- every story held back from a reader (budget, quiet hours, or not sent in time) is in the
  first digest they get after it was held back;
- no story reaches a reader twice in their digests, nor in a digest after its alert reached
  them.

Time is simulated in half-hour steps over two days: alerts are raised at their moments,
the scheduler's ``run_due`` runs each step, and a worker's claim-and-record runs each step
unless the mail service is "down". The mail itself is not put on the wire (other tests do):
a claimed row is recorded as sent at the step's time, which is what the promises are about.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import time_machine
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from digest import alerts, editions
from digest.config import load_settings
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.outcomes import Outcome
from digest.models import Alert, Body, Delivery, Edition, Post, Subscription
from digest.quiet_hours import QuietHours
from digest.states import DeliveryKind, DeliveryStatus
from tests.support.outbox import insert_readers

T0 = datetime(2026, 3, 27, 0, 0, tzinfo=UTC)  # Europe and Sydney change clocks in these days
STEP = timedelta(minutes=30)
DAYS = 2
ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"]
QUIET = ["22:00-07:00", "off", "00:00-06:00", "20:30-08:15", "13:00-14:00"]
D, A, B, E = (m.__table__ for m in (Delivery, Alert, Body, Edition))  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class World:
    zones: list[str]
    hours: list[int]
    budget: int
    quiet: str
    expiry: float
    alert_minutes: list[int]  # when each alert is raised, minutes after T0
    down: list[tuple[int, int]]  # outages: (start step, length in steps)


worlds = st.builds(
    World,
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=4),
    hours=st.lists(st.integers(min_value=5, max_value=9), min_size=4, max_size=4),
    budget=st.integers(min_value=0, max_value=3),
    quiet=st.sampled_from(QUIET),
    expiry=st.sampled_from([0.5, 1.0, 3.0, 6.0]),
    alert_minutes=st.lists(
        st.integers(min_value=0, max_value=DAYS * 24 * 60 - 600), min_size=1, max_size=7
    ).map(sorted),
    down=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=DAYS * 48), st.integers(min_value=1, max_value=10)
        ),
        max_size=3,
    ),
)


def _fresh_store(template: Path, tmp: Path) -> Database:
    """A migrated SQLite store, copied from the one migrated once per test session."""
    shutil.copy(template, tmp / "digest.db")
    return Database(f"sqlite:///{tmp / 'digest.db'}")


def _send_due(db: Database, now: datetime) -> None:
    """A worker's turn at ``now``: everything it may send goes, accepted by the server."""
    with db.transaction() as session:
        claimed = outbox.claim(
            session, owner="w", limit=10_000, lease=timedelta(minutes=5), now=now
        )
        done = [Outcome(c.id, DeliveryStatus.SENT.value, "250 ok") for c in claimed]
        outbox.record(session, owner="w", outcomes=done, now=now)


def _simulate(world: World, db: Database, tmp: Path) -> None:
    config = load_settings(
        database_url=db.url,
        secret_key="k" * 40,
        smtp_url=f"file:{tmp / 'out'}",
        var_dir=tmp / "var",
        alert_budget=world.budget,
        quiet_hours=world.quiet,
        alert_expiry_hours=world.expiry,
    )
    with time_machine.travel(T0 - timedelta(days=30), tick=False), db.transaction() as s:
        people = [
            {"email": f"r{i}@example.com", "timezone": zone, "send_hour": world.hours[i]}
            for i, zone in enumerate(world.zones)
        ]
        ids = insert_readers(s, people)
        s.execute(sa.update(U).where(U.c.subscriber_id.in_(ids)).values(alerts=True))
    down = {start + k for start, length in world.down for k in range(length)}
    pending = list(world.alert_minutes)
    step, now = 0, T0
    while now < T0 + timedelta(days=DAYS):
        with time_machine.travel(now, tick=False):
            while pending and T0 + timedelta(minutes=pending[0]) <= now:
                minute = pending.pop(0)
                with db.transaction() as s:
                    post = Post(guid=f"g{minute}", title=f"Breaking {minute}",
                                link=f"https://n.example/{minute}", categories=["World"],
                                published_at=now, first_seen_at=now, updated_at=now)  # fmt: skip
                    s.add(post)
                    s.flush()
                    pid = int(post.id or 0)
                alerts.raise_alert(db, config, str(pid), now=now)
            editions.run_due(db, config, now)
            if step not in down:
                _send_due(db, now)
        step += 1
        now += STEP


def _check(world: World, db: Database) -> None:
    quiet = QuietHours.parse(world.quiet)
    with db.transaction() as s:
        zone_of = {f"r{i}@example.com": zone for i, zone in enumerate(world.zones)}
        alert_rows = s.execute(
            sa.select(D.c.to_email, D.c.status, D.c.sent_at, D.c.updated_at, A.c.post_id)
            .join(A, D.c.period_key == sa.literal("1/alert:") + sa.cast(A.c.id, sa.String))
            .where(D.c.kind == DeliveryKind.ALERT.value)
        ).all()
        digests = s.execute(
            sa.select(D.c.to_email, E.c.edition_at, B.c.post_ids)
            .join(E, E.c.id == D.c.edition_id)
            .join(B, B.c.id == D.c.body_id)
            .where(D.c.kind == DeliveryKind.DIGEST.value, D.c.status == DeliveryStatus.SENT.value)
            .order_by(E.c.edition_at)
        ).all()
    by_reader: dict[str, list[tuple[datetime, list[int]]]] = defaultdict(list)
    for email, at, post_ids in digests:
        by_reader[email].append((at, list(post_ids)))
    per_day: dict[tuple[str, object], int] = defaultdict(int)
    for email, status, sent_at, updated_at, post_id in alert_rows:
        zone = zone_of[email]
        if status == DeliveryStatus.SENT.value:
            assert not quiet.is_quiet(sent_at, zone), (email, sent_at, zone)
            day = sent_at.astimezone(ZoneInfo(zone)).date()
            per_day[(email, day)] += 1
            assert per_day[(email, day)] <= world.budget, (email, day)
            # Its story never comes again in a digest made after it went out.
            for at, post_ids in by_reader[email]:
                assert not (at >= sent_at and post_id in post_ids), (email, post_id, at)
        elif status in (DeliveryStatus.HELD.value, DeliveryStatus.SKIPPED.value,
                        DeliveryStatus.FOLDED.value):  # fmt: skip
            # Held back: the first digest made after it was held back carries it.
            later = [(at, ids) for at, ids in by_reader[email] if at >= updated_at]
            if later:
                assert post_id in later[0][1], (email, post_id, status, updated_at, later[0])
    for email, got in by_reader.items():
        seen = [pid for _, ids in got for pid in ids]
        assert len(seen) == len(set(seen)), (email, seen)


# Each example simulates two days against a store: shrinking a failure would take many
# minutes, so the example is reported as found.
@settings(
    max_examples=10,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(world=worlds)
# The mail service down when the alert is raised at 21:30 and back at 22:00, when quiet hours
# begin: the alert must not go then (it is folded into the digest instead).
@example(
    world=World(
        zones=["UTC"],
        hours=[7, 7, 7, 7],
        budget=2,
        quiet="22:00-07:00",
        expiry=3.0,
        alert_minutes=[21 * 60 + 30],
        down=[(43, 1)],
    )
)
def test_the_lane_keeps_its_promises(world: World, sqlite_template: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = _fresh_store(sqlite_template, Path(tmp))
        try:
            _simulate(world, db, Path(tmp))
            _check(world, db)
        finally:
            db.dispose()
