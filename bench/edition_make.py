"""Benchmark: making one edition for N subscribers (grouping, selection, render, set-wise enqueue).

Baseline in the same run: a bare ``INSERT INTO deliveries SELECT ... FROM subscribers`` of the
same N rows, the floor any enqueue pays. The ratio says what digest adds on top of it.

    .venv/bin/python bench/edition_make.py [N] [--pg URL]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from _stores import DEFAULT_PG, stores

from digest import editions
from digest.clock import utcnow
from digest.config import load_settings
from digest.db import Database
from digest.models import Post, Subscriber

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


def fill(db: Database, n: int) -> None:
    rng = random.Random(7)
    now = utcnow()
    rows = []
    for i in range(n):
        topics = sorted(rng.sample(TOPICS, rng.choice([0, 0, 1, 2])))
        rows.append(
            {
                "email": f"reader{i}@example.com",
                "name": f"Reader {i}",
                "status": "active",
                "cadence": "daily",
                "topics": topics,
                "timezone": rng.choice(ZONES),
                "send_hour": rng.choice([6, 7, 8]),
                "created_at": now,
                "updated_at": now,
            }
        )
    with db.transaction() as s:
        for start in range(0, n, 5000):
            s.execute(sa.insert(Subscriber), rows[start : start + 5000])
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
                " SELECT 'digest', id, 'base', email, 'queued', 0, created_at,"
                " 'b' || CAST(id AS TEXT), created_at, created_at FROM subscribers"
            )
        )
    elapsed = time.perf_counter() - start
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM deliveries WHERE period_key = 'base'"))
    return elapsed


def run(name: str, db: Database, n: int, tmp: Path) -> None:
    db.upgrade()
    fill(db, n)
    settings = load_settings(database_url=db.url, secret_key="b" * 40, smtp_url=f"file:{tmp}/out")
    t_base = baseline(db)
    start = time.perf_counter()
    report = editions.make_edition(db, settings, cadence="daily", now=utcnow(), due_only=False)
    t_make = time.perf_counter() - start
    assert report is not None and report.recipients == n, report
    start = time.perf_counter()
    again = editions.make_edition(db, settings, cadence="daily", now=utcnow(), due_only=False)
    t_again = time.perf_counter() - start
    assert again is None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"| {name} | {n:,} | {len(report.groups)} | {report.bodies} | {t_make:.2f} s "
        f"({n / t_make:,.0f}/s) | {t_base:.2f} s | {t_base / t_make:.2f} | {t_again:.2f} s "
        f"| {rss:.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    print(
        "| store | subscribers | groups | bodies | make edition | bare INSERT...SELECT "
        "| ratio | again (no-op) | peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, db in stores(args.pg):
            run(name, db, args.n, Path(tmp))


if __name__ == "__main__":
    main()
