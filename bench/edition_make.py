"""Benchmark: making editions (grouping, selection, render, set-wise enqueue).

Default: one edition for N subscriptions on one newsletter, against a bare ``INSERT INTO
deliveries SELECT ... FROM subscriptions`` of the same N rows in the same run (the floor any
enqueue pays); the ratio says what digest adds on top of it.

``--three``: three newsletters of N subscriptions each against one newsletter of N, same run,
each store filled once and the editions made in a fresh child process per round, so its peak
RSS is theirs alone. ``--people`` says who reads the three: ``same`` (N people on all three),
``mix`` (1.5 N people: the first N read the first, the last N the second, two in three of
everyone the third) or ``apart`` (3 N people, one newsletter each). With ``--history`` the
previous day's editions are made first (not timed), so today's are judged against them.

    .venv/bin/python bench/edition_make.py [N] [--pg URL]
    .venv/bin/python bench/edition_make.py [N] --three [--people mix] [--rounds 3] [--history]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _readers import add_newsletter, add_people, subscribe
from _stores import DEFAULT_PG, store_sets

from digest import editions, newsletters
from digest.clock import utcnow
from digest.compose.render import Renderers
from digest.config import load_settings
from digest.db import Database
from digest.models import Body, Delivery, Edition, Post, Subscription

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
]
TOPICS = ["World", "Politics", "Business", "Technology", "Sports"]
SLUGS = ["daily-brief", "business", "weekend"]
D, E, B = (m.__table__ for m in (Delivery, Edition, Body))  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]


def readers_of(people: str, n: int) -> tuple[int, list[range | list[int]]]:
    """How many people, and which of them (by index) read each of the three newsletters."""
    if people == "same":
        return n, [range(n)] * 3
    if people == "apart":
        return 3 * n, [range(0, n), range(n, 2 * n), range(2 * n, 3 * n)]
    total = n * 3 // 2
    return total, [range(0, n), range(total - n, total), [i for i in range(total) if i % 3 != 2]]


def fill(db: Database, n_people: int, readers: list[range | list[int]], now: datetime) -> None:
    """People over eight zones and three hours, their subscriptions (0-2 topics each), and 40
    posts of the last 40 hours, four of them featured."""
    rng = random.Random(7)
    people = [
        {
            "email": f"reader{i}@example.com",
            "name": f"Reader {i}",
            "timezone": rng.choice(ZONES),
            "send_hour": rng.choice([6, 7, 8]),
        }
        for i in range(n_people)
    ]
    topics = [sorted(rng.sample(TOPICS, rng.choice([0, 0, 1, 2]))) for _ in range(n_people)]
    with db.transaction() as s:
        ids = add_people(s, people)
        newsletters.edit(s, newsletters.by_id(s, 1), slug=SLUGS[0])
        for k, who in enumerate(readers):
            nid = 1 if k == 0 else add_newsletter(s, SLUGS[k], SLUGS[k].title())
            subscribe(s, [ids[i] for i in who], nid, topics=lambda j, w=who: topics[w[j]])
        for i in range(40):
            at = now - timedelta(hours=i)
            cats = [TOPICS[i % 5]] + (["Don't Miss"] if i % 13 == 0 else [])
            s.add(
                Post(
                    guid=f"p{i}",
                    title=f"Story {i} " + "x" * 60,
                    link=f"https://n.example/{i}",
                    summary="A summary of the story, two sentences long. " * 4,
                    categories=cats,
                    published_at=at,
                    first_seen_at=at,
                    updated_at=at,
                )
            )


def baseline(db: Database) -> float:
    start = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO deliveries (kind, subscriber_id, period_key, to_email, status,"
                " attempts, next_attempt_at, message_id, created_at, updated_at)"
                " SELECT 'digest', p.id, 'base', p.email, 'queued', 0, p.created_at,"
                " 'b' || CAST(p.id AS TEXT), p.created_at, p.created_at"
                " FROM subscribers p JOIN subscriptions s ON s.subscriber_id = p.id"
                " WHERE s.newsletter_id = 1"
            )
        )
    elapsed = time.perf_counter() - start
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM deliveries WHERE period_key = 'base'"))
    return elapsed


def settings_for(url: str, tmp: Path):  # type: ignore[no-untyped-def]
    return load_settings(database_url=url, secret_key="b" * 40, smtp_url=f"file:{tmp}/out")


def run_one(name: str, db: Database, n: int, tmp: Path) -> None:
    """The default table: one newsletter's edition against the bare INSERT ... SELECT."""
    db.upgrade()
    now = utcnow()
    fill(db, n, [range(n)], now)
    settings = settings_for(db.url, tmp)
    t_base = baseline(db)
    start = time.perf_counter()
    report = editions.make_edition(db, settings, cadence="daily", now=now, due_only=False)
    t_make = time.perf_counter() - start
    assert report is not None and report.recipients == n, report
    start = time.perf_counter()
    again = editions.make_edition(db, settings, cadence="daily", now=now, due_only=False)
    t_again = time.perf_counter() - start
    assert again is None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| {name} | {n:,} | {len(report.groups)} | {report.bodies} | {t_make:.2f} s "
        f"({n / t_make:,.0f}/s) | {t_base:.2f} s | {t_base / t_make:.2f} | {t_again:.2f} s "
        f"| {rss:.0f} MB |",
        flush=True,
    )


def peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` starts afresh at exec, while ``ru_maxrss`` of a
    child keeps the high-water mark of the parent it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(url: str, slugs: list[str], now: datetime, tmp: Path) -> None:
    """Make today's editions of ``slugs`` one after the other, as the scheduler's tick does;
    print seconds, recipients and the process's peak RSS before and after, as JSON."""
    db = Database(url)
    settings = settings_for(url, tmp)
    renderers = Renderers(settings)  # a long-running scheduler compiles templates once
    rss_before = peak_rss_mb()
    start = time.perf_counter()
    recipients = groups = 0
    for slug in slugs:
        report = editions.make_edition(
            db, settings, cadence="daily", now=now, due_only=False, renderers=renderers,
            newsletter=slug,
        )  # fmt: skip
        assert report is not None
        recipients += report.recipients + report.skipped
        groups += len(report.groups)
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "recipients": recipients, "groups": groups,
                      "rss_before": rss_before, "rss": rss}))  # fmt: skip


def in_child(db: Database, slugs: list[str], now: datetime, tmp: Path) -> dict[str, float]:
    db.dispose()
    out = subprocess.run(
        [sys.executable, __file__, "--child", db.url, "--slugs", ",".join(slugs),
         "--now", now.isoformat(), "--tmp", str(tmp)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def reset(db: Database, now: datetime, before: datetime | None) -> None:
    """Undo the editions made at ``now`` (their deliveries, bodies, and the readers' windows)."""
    today = sa.select(E.c.id).where(E.c.edition_at == now)
    with db.engine.begin() as conn:
        conn.execute(sa.delete(D).where(D.c.edition_id.in_(today)))
        conn.execute(sa.delete(B).where(B.c.edition_id.in_(today)))
        conn.execute(sa.delete(E).where(E.c.edition_at == now))
        conn.execute(sa.update(U).where(U.c.last_digest_at == now).values(last_digest_at=before))
    settle(db)


def settle(db: Database) -> None:
    """PostgreSQL: fresh planner statistics and no dead rows, as autovacuum leaves a steady
    store. SQLite is left as digest leaves it: without ``ANALYZE`` statistics."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))


def run_three(name: str, one: Database, three: Database, args: argparse.Namespace) -> None:
    """Rounds of: one newsletter's edition, then three newsletters' editions, each in a child."""
    n, tmp = args.n, Path(args.tmp)
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    before = now - timedelta(days=1) if args.history else None
    n_people, readers = readers_of(args.people, n)
    for db, who, slugs in ((one, [range(n)], SLUGS[:1]), (three, readers, SLUGS)):
        db.upgrade()
        fill(db, n_people if len(who) == 3 else n, who, now)
        if before is not None:
            settle(db)
            in_child(db, slugs, before, tmp)
        settle(db)
    results: dict[str, list[dict[str, float]]] = {"one": [], "three": []}
    for _ in range(args.rounds):
        for label, db, slugs in (("one", one, SLUGS[:1]), ("three", three, SLUGS)):
            got = in_child(db, slugs, now, tmp)
            assert got["recipients"] == n * len(slugs), got
            results[label].append(got)
            reset(db, now, before)
    t1 = [r["seconds"] for r in results["one"]]
    t3 = [r["seconds"] for r in results["three"]]
    for label, times in (("one", t1), ("three", t3)):
        rows = results[label]
        print(
            f"| {name} | {label} | {n_people if label == 'three' else n:,} | "
            f"{int(rows[0]['groups'])} | {min(times):.2f} s | {statistics.median(times):.2f} s | "
            f"{max(r['rss'] for r in rows):.0f} MB (at start {rows[0]['rss_before']:.0f} MB) | "
            f"{', '.join(f'{t:.1f}' for t in times)} |",
            flush=True,
        )
    print(
        f"| {name} | **three / one** | | | {min(t3) / min(t1):.2f}x | "
        f"{statistics.median(t3) / statistics.median(t1):.2f}x | target <= 3.5x | |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--three", action="store_true", help="three newsletters against one")
    parser.add_argument("--people", choices=["same", "mix", "apart"], default="mix")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,pg", help="sqlite, pg or both")
    parser.add_argument("--history", action="store_true", help="yesterday's editions first")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--slugs", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.slugs.split(","), datetime.fromisoformat(args.now), Path(args.tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        args.tmp = tmp
        if args.three:
            print(f"people: {args.people}; history: {args.history}; rounds: {args.rounds}")
            print(
                "| store | newsletters | people | groups | min | median | peak RSS | rounds (s) |"
            )
            print("|---|---|---|---|---|---|---|---|")
            for name, (one, three) in store_sets(args.pg, count=2, kinds=args.stores):
                run_three(name, one, three, args)
            return
        print(
            "| store | subscriptions | groups | bodies | make edition | bare INSERT...SELECT "
            "| ratio | again (no-op) | peak RSS |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, (db,) in store_sets(args.pg, kinds=args.stores):
            run_one(name, db, args.n, Path(tmp))


if __name__ == "__main__":
    main()
