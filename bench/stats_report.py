"""Benchmark: one edition's report (``digest stats --edition``) against counting the whole
outbox by state (what ``/api/stats`` and ``digest status`` already do), in the same run and
on the same store, with N readers and E editions (N x E deliveries).

The report reads one edition's rows through the (edition, subscriber) index, its bounces'
replies, the attributed unsubscribes, and its clicks; counting the outbox reads every row. A
report should cost about 1/E of the whole count however big the outbox grows.

    .venv/bin/python bench/stats_report.py [N] [--editions 10] [--rounds 5] [--stores sqlite,pg]

"its deliveries by state" is ``stats.edition_counts`` for the same edition, what the desk's
edition pages already pay: the report's floor without an index on (edition, state).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from _stores import DEFAULT_PG, store_sets

from digest import engagement
from digest.columns import UTCDateTime
from digest.db import Database
from digest.models import Edition
from digest.stats import edition_counts, outbox_counts

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
_COUNT = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) "


def fill(db: Database, readers: int, editions: int) -> int:
    """N readers, E sent editions of them all (3 % bounced, half hard; 2 % deferred), 2 % of
    readers unsubscribed after the last, clicks on 20 links and 5 % of copies each; the last
    edition's id."""
    at = sa.bindparam("at", NOW - timedelta(days=editions + 1), type_=UTCDateTime)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (email, name, timezone, send_hour, tracking_opt_out,"
                " created_at, updated_at) "
                + _COUNT
                + "SELECT 'r' || i || '@example.com', '', 'UTC', 7, false, :at, :at FROM n"
            ).bindparams(at),
            {"n": readers},
        )
        conn.execute(
            sa.text(
                "INSERT INTO subscriptions (subscriber_id, newsletter_id, status, cadence, topics,"
                " created_at, updated_at, confirmed_at, alerts) "
                "SELECT id, 1, 'active', 'daily', '[]', :at, :at, :at, false FROM subscribers"
            ).bindparams(at)
        )
    last = 0
    for e in range(editions):
        when = NOW - timedelta(days=editions - e)
        with db.transaction() as session:
            row = Edition(key=f"1/daily:{when:%Y-%m-%d}", cadence="daily", edition_at=when)
            session.add(row)
            session.flush()
            last = int(row.id or 0)
        sent_at = sa.bindparam("sent_at", when, type_=UTCDateTime)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO deliveries (kind, edition_id, subscriber_id, period_key, to_email,"
                    " status, attempts, next_attempt_at, last_reply, message_id, created_at,"
                    " updated_at, sent_at) SELECT 'digest', :e, id, :key, email,"
                    " CASE WHEN id % 100 < 3 THEN 'bounced' WHEN id % 100 < 5 THEN 'deferred'"
                    " ELSE 'sent' END, 1, :sent_at,"
                    " CASE WHEN id % 100 < 2 THEN '550 5.1.1 user unknown'"
                    " WHEN id % 100 < 3 THEN '552 5.2.2 mailbox full' ELSE '250 ok' END,"
                    " 'e' || :e || '.' || id, :sent_at, :sent_at, :sent_at FROM subscribers"
                ).bindparams(sent_at),
                {"e": last, "key": f"1/daily:{when:%Y-%m-%d}"},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO link_clicks (mail, url_key, url, human, machine) "
                    + _COUNT
                    + "SELECT :m, 'k' || i, 'https://news.example.com/' || i, i * 7, i FROM n"
                ),
                {"n": 20, "m": f"e{last}"},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO mail_copies (mail, copy_tag, human_click_at) "
                    "SELECT :m, 'c' || id, :sent_at FROM subscribers WHERE id % 20 = 0"
                ).bindparams(sent_at),
                {"m": f"e{last}"},
            )
    gone = sa.bindparam("gone", NOW, type_=UTCDateTime)
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = :gone,"
                " updated_at = :gone WHERE subscriber_id % 50 = 7"
            ).bindparams(gone)
        )
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return last


def report(db: Database, edition_id: int) -> None:
    """One edition's report, as ``digest stats --edition`` reads it."""
    with db.transaction() as session:
        found = engagement.mail_report(session, "edition", edition_id)
        assert found.unsubscribes > 0 and found.bounced_hard > 0


def counted(db: Database, edition_id: int) -> None:
    """The edition's deliveries by state alone, as the desk's edition pages count them."""
    with db.transaction() as session:
        edition_counts(session, [edition_id])


def whole(db: Database) -> None:
    """The whole outbox counted by state."""
    with db.transaction() as session:
        outbox_counts(session)


def best(work, rounds: int) -> float:  # type: ignore[no-untyped-def]
    """The median of ``rounds`` timed runs, in seconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Fill each store, time both reads, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("readers", type=int, nargs="?", default=100_000)
    parser.add_argument("--editions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stores", default="sqlite,pg")
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    print(f"{args.readers} readers x {args.editions} editions, median of {args.rounds}\n")
    print(
        "| store | deliveries | one edition's report | its deliveries by state"
        " | whole outbox by state | report / outbox |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, (db,) in store_sets(args.pg, 1, args.stores):
        db.upgrade()
        last = fill(db, args.readers, args.editions)

        one = best(lambda db=db, last=last: report(db, last), args.rounds)
        states = best(lambda db=db, last=last: counted(db, last), args.rounds)
        every = best(lambda db=db: whole(db), args.rounds)
        total = f"{args.readers * args.editions:,}"
        ms = f"{one * 1000:.0f} ms | {states * 1000:.0f} ms | {every * 1000:.0f} ms"
        print(f"| {name} | {total} | {ms} | {one / every:.2f} |")


if __name__ == "__main__":
    main()
