"""Benchmark: import N generated subscribers from CSV into SQLite and PostgreSQL.

Reports rows/s of `subscribers_csv.import_rows` (validation, merge, one transaction; a person
and their subscription to newsletter 1 per row) and, as the baseline in the same process, a bare
executemany INSERT of the same people plus one INSERT ... SELECT of their subscriptions:
the ratio says what validation and merging cost over the database's own floor.

    .venv/bin/python bench/import_subscribers.py [N] [--pg URL]
"""

from __future__ import annotations

import argparse
import io
import random
import time

import sqlalchemy as sa
from _readers import subscribe_everyone
from _stores import DEFAULT_PG, stores

from digest import subscribers_csv as csvio
from digest.clock import utcnow
from digest.db import Database
from digest.models import Subscriber

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Europe/Berlin"]
TOPICS = ["World", "Politics", "Business", "Technology", "Sports"]


def make_csv(n: int) -> str:
    rng = random.Random(1)
    out = io.StringIO()
    out.write("email,name,cadence,topics,timezone\n")
    for i in range(n):
        topics = ",".join(rng.sample(TOPICS, rng.randint(0, 2)))
        out.write(
            f'User{i}@Example.com,Reader {i},{rng.choice(["daily", "weekly"])},"{topics}",'
            f"{rng.choice(ZONES)}\n"
        )
    return out.getvalue()


def timed_import(db: Database, text: str) -> float:
    start = time.perf_counter()
    with db.transaction() as s:
        report = csvio.import_rows(s, csvio.read_rows(io.StringIO(text)), status="active")
    elapsed = time.perf_counter() - start
    assert report.added == text.count("\n") - 1 and not report.errors, report
    return elapsed


def timed_baseline(db: Database, n: int) -> float:
    """A bare executemany of the people, and one INSERT ... SELECT of their subscriptions."""
    now = utcnow()
    rows = [
        {
            "email": f"base{i}@example.com",
            "name": f"Reader {i}",
            "timezone": "UTC",
            "send_hour": 7,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    stmt = sa.text(
        "INSERT INTO subscribers (email, name, timezone, send_hour, created_at, updated_at) "
        "VALUES (:email, :name, :timezone, :send_hour, :created_at, :updated_at)"
    )
    start = time.perf_counter()
    with db.transaction() as s:
        s.connection().execute(stmt, rows)
        subscribe_everyone(s, 1, where=Subscriber.email.startswith("base"))  # type: ignore[attr-defined]
    return time.perf_counter() - start


def run(name: str, db: Database, n: int, text: str) -> None:
    db.upgrade()
    t_import = timed_import(db, text)
    t_again = timed_import_again(db, text)
    t_base = timed_baseline(db, n)
    print(
        f"| {name} | {n:,} | {n / t_import:,.0f} rows/s ({t_import:.1f} s) | "
        f"{n / t_again:,.0f} rows/s | {n / t_base:,.0f} rows/s | {t_base / t_import:.2f} |"
    )


def timed_import_again(db: Database, text: str) -> float:
    start = time.perf_counter()
    with db.transaction() as s:
        report = csvio.import_rows(s, csvio.read_rows(io.StringIO(text)), status="active")
    assert report.added == 0 and report.updated == 0, report
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    text = make_csv(args.n)
    print(
        "| store | rows | import (new) | import again (no change) | bare INSERT baseline | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for name, db in stores(args.pg):
        run(name, db, args.n, text)


if __name__ == "__main__":
    main()
