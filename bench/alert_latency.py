"""Benchmark: how soon the first message of a breaking-news alert leaves the outbox when a
worker is idle: from the moment ``raise_alert`` has committed to the moment a real SMTP server
(aiosmtpd, on loopback, in this process) has the message.

The worker runs as ``digest serve`` runs it, in the same event loop, polling the outbox; the
alert is raised from a thread, as the admin API does. Each trial raises a new post as an alert
to R opted-in readers, at a random moment of the worker's idle poll.

    .venv/bin/python bench/alert_latency.py [--trials 20] [--readers 50] [--stores sqlite,pg]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _readers import add_people, subscribe
from _stores import DEFAULT_PG, store_sets
from aiosmtpd.controller import Controller

from digest import alerts
from digest.config import load_settings
from digest.db import Database
from digest.delivery import worker as worker_module
from digest.delivery.running import run_worker
from digest.models import Post, Subscription

U = Subscription.__table__  # type: ignore[attr-defined]


class FirstArrival:
    """An SMTP handler that notes when the first message of each trial arrives."""

    def __init__(self) -> None:
        self.first: float | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.first is None:
            self.first = time.perf_counter()
        return "250 OK"


def fill(db: Database, readers: int, trials: int) -> list[int]:
    db.upgrade()
    now = datetime.now(UTC)
    with db.transaction() as s:
        ids = add_people(s, [{"email": f"r{i}@example.com"} for i in range(readers)])
        subscribe(s, ids)
        s.execute(sa.update(U).values(alerts=True))
        posts = [
            Post(guid=f"b{i}", title=f"Breaking {i}", link=f"https://n.example/b{i}",
                 published_at=now, first_seen_at=now, updated_at=now)
            for i in range(trials)
        ]  # fmt: skip
        s.add_all(posts)
        s.flush()
        return [int(p.id or 0) for p in posts]


async def trial_run(db: Database, settings: Any, post_ids: list[int]) -> list[float]:
    handler = FirstArrival()
    with socket.socket() as probe:  # a free port: Controller checks it can connect to it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})
    stop = asyncio.Event()
    worker = asyncio.ensure_future(run_worker(settings, db, stop))
    latencies = []
    try:
        await asyncio.sleep(2)  # idle: nothing queued
        for post_id in post_ids:
            await asyncio.sleep(random.uniform(0.5, 1.5))  # anywhere in the worker's poll
            handler.first = None
            now = datetime.now(UTC)
            await asyncio.to_thread(
                alerts.raise_alert, db, settings, str(post_id), now=now - timedelta(seconds=1)
            )
            raised = time.perf_counter()
            while handler.first is None:
                await asyncio.sleep(0.005)
            latencies.append(handler.first - raised)
            await asyncio.sleep(1)  # let the rest of the alert go before the next trial
    finally:
        stop.set()
        await worker
        controller.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--stores", default="sqlite,pg")
    args = parser.parse_args()
    random.seed(7)
    print(f"worker poll when idle: {worker_module.POLL_SECONDS} s; {args.readers} readers")
    print("| store | trials | min | median | max | all within 1 s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (db,) in store_sets(args.pg, kinds=args.stores):
            post_ids = fill(db, args.readers, args.trials)
            settings = load_settings(
                database_url=db.url, secret_key="b" * 40, quiet_hours="off",
                alert_budget=24, var_dir=Path(tmp),
            )  # fmt: skip
            got = asyncio.run(trial_run(db, settings, post_ids))
            print(
                f"| {name} | {len(got)} | {min(got):.3f} s | {statistics.median(got):.3f} s | "
                f"{max(got):.3f} s | {'yes' if max(got) < 1 else 'no'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
