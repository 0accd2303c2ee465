"""Benchmark: what reporting state changes to webhooks costs the paths that make them.

On each store, two empty databases side by side: one with no webhook, one with a webhook that
takes ``subscriber.confirmed`` and ``subscriber.pending``. In each, a CSV import of N readers
(every one an event in the second) and then M subscribe requests (``request_subscription``,
one transaction each, every one an event in the second). Ratios are rates with a webhook over
rates without, in the same run.

    .venv/bin/python bench/webhook_events.py [N] [--requests M] [--pg URL]
"""

from __future__ import annotations

import argparse
import io
import time

from _stores import DEFAULT_PG, store_sets

from digest import subscribers_csv as csvio
from digest.clock import utcnow
from digest.db import Database
from digest.models_engagement import Webhook
from digest.subscriber_fields import Consent
from digest.subscription_requests import request_subscription


def make_csv(n: int) -> str:
    lines = ["email,name"] + [f"user{i}@example.com,Reader {i}" for i in range(n)]
    return "\n".join(lines) + "\n"


def timed_import(db: Database, text: str) -> float:
    start = time.perf_counter()
    with db.transaction() as s:
        csvio.import_rows(s, csvio.read_rows(io.StringIO(text)), status="active")
    return time.perf_counter() - start


def timed_requests(db: Database, m: int) -> float:
    start = time.perf_counter()
    for i in range(m):
        with db.transaction() as s:
            request_subscription(s, f"asker{i}@example.com", consent=Consent(at=utcnow()))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=20_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    text = make_csv(args.n)
    print(
        "| store | import, no webhook | import, webhook | ratio | requests, no webhook "
        "| requests, webhook | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (plain, hooked) in store_sets(args.pg, count=2):
        for db in (plain, hooked):
            db.upgrade()
        with hooked.transaction() as s:
            events = ["subscriber.pending", "subscriber.confirmed"]
            s.add(Webhook(url="https://hooks.example.org/x", events=events, secret="s"))
        imp = [args.n / timed_import(db, text) for db in (plain, hooked)]
        req = [args.requests / timed_requests(db, args.requests) for db in (plain, hooked)]
        print(
            f"| {name} | {imp[0]:,.0f} rows/s | {imp[1]:,.0f} rows/s | {imp[1] / imp[0]:.2f} "
            f"| {req[0]:,.0f} req/s | {req[1]:,.0f} req/s | {req[1] / req[0]:.2f} |"
        )


if __name__ == "__main__":
    main()
