"""Benchmark: queuing an announcement and a breaking-news alert for N readers, against queuing
one digest edition of the same N readers, in the same run and on the same store.

Each round makes, from the same starting store (the outbox emptied in between), the edition
(``editions.make_edition``), then the announcement (``announcements.send``), then the alert
(``alerts.raise_alert``, everyone opted in, quiet hours off so every zone is queued). The
issue's target: each one-off at most 2x the edition's time.

    .venv/bin/python bench/oneoff_queue.py [N] [--rounds 3] [--stores sqlite,pg] [--pg URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from _stores import DEFAULT_PG, store_sets
from edition_make import fill, settle

from digest import alerts, announcements, editions
from digest import announcement_store as drafts
from digest.config import load_settings
from digest.db import Database
from digest.models import Alert, Announcement, Body, Delivery, Edition, Post, Subscription

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TABLES = [m.__table__ for m in (Delivery, Alert, Announcement, Body, Edition)]  # type: ignore[attr-defined]
U = Subscription.__table__  # type: ignore[attr-defined]


def reset(db: Database) -> None:
    """The store as filled: no mail, no edition, no alert, no announcement."""
    with db.engine.begin() as conn:
        for table in TABLES:
            conn.execute(sa.delete(table))
        conn.execute(sa.update(U).values(last_digest_at=None))
    settle(db)


def timed(work) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    count = work()
    return time.perf_counter() - start, count


def run(name: str, db: Database, n: int, rounds: int, tmp: Path) -> None:
    db.upgrade()
    fill(db, n, [range(n)], NOW)
    with db.engine.begin() as conn:
        conn.execute(sa.update(U).values(alerts=True))
    settings = load_settings(
        database_url=db.url, secret_key="b" * 40, smtp_url=f"file:{tmp}/out", quiet_hours="off"
    )
    with db.transaction() as s:
        post_id = int(s.execute(sa.select(Post.id).order_by(Post.id).limit(1)).scalar_one())
    times: dict[str, list[float]] = {"digest": [], "announcement": [], "alert": []}

    def digest() -> int:
        report = editions.make_edition(db, settings, cadence="daily", now=NOW, due_only=False)
        assert report is not None
        return report.recipients + report.skipped

    def announcement() -> int:
        with db.transaction() as s:
            draft = drafts.Draft("A word from the editor", "We have **news**: a podcast.")
            row = drafts.create(s, None, draft, settings)
            aid = int(row.id or 0)
        with db.transaction() as s:
            return announcements.send(s, settings, aid, NOW).added

    def alert() -> int:
        report = alerts.raise_alert(db, settings, str(post_id), now=NOW)
        return report.queued + report.held_budget + report.held_quiet

    for _ in range(rounds):
        for label, work in (("digest", digest), ("announcement", announcement), ("alert", alert)):
            reset(db)
            seconds, count = timed(work)
            assert count == n, (label, count)
            times[label].append(seconds)
    base = statistics.median(times["digest"])
    for label, ts in times.items():
        med = statistics.median(ts)
        ratio = "1.00 (baseline)" if label == "digest" else f"{med / base:.2f}x (target <= 2x)"
        print(
            f"| {name} | {label} | {n:,} | {min(ts):.2f} s | {med:.2f} s | {ratio} | "
            f"{', '.join(f'{t:.2f}' for t in ts)} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=100_000)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,pg", help="sqlite, pg or both")
    args = parser.parse_args()
    print("| store | queued | readers | min | median | against the edition | rounds (s) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (db,) in store_sets(args.pg, kinds=args.stores):
            run(name, db, args.n, args.rounds, Path(tmp))


if __name__ == "__main__":
    main()
