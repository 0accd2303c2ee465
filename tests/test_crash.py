"""Crash safety: a worker killed with SIGKILL at random moments, restarted, again and again.

In the end every subscriber has the digest exactly once by Message-ID, and the copies beyond
one are bounded by the in-flight rule: only messages accepted by the server but not yet
marked sent when the process died can go again (outcomes are written every few dozen
messages, so that is a few dozen per kill, not a batch).
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.db import Database
from digest.delivery.worker import FLUSH_EVERY
from digest.models import Delivery
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.smtp_server import SmtpServer
from tests.support.workers import start_worker, worker_env

D = Delivery.__table__
N = 2000
BATCH = 200
CONNECTIONS = 4


def counts(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        return dict(
            session.execute(sa.select(D.c.status, sa.func.count()).group_by(D.c.status)).all()
        )  # type: ignore[arg-type]


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(
    db: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    add_subscribers(db, N)
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == N
    env = worker_env(db.url, smtp_server.url, DIGEST_SMTP_CONNECTIONS=str(CONNECTIONS))
    rng = random.Random(20261129)
    kills = 0
    while kills < 6 and counts(db).get("sent", 0) < N:
        proc = start_worker(env, tmp_path, "--batch-size", str(BATCH))
        # Wait until it is sending, then kill it at a random moment mid-edition.
        before = len(smtp_server.handler.received)
        deadline = time.monotonic() + 30
        while len(smtp_server.handler.received) == before and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode())  # type: ignore[union-attr]
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        kills += 1
    # The last run finishes the edition (it takes back the dead workers' leases at once).
    last = start_worker(env, tmp_path, "--batch-size", str(BATCH), "--until-empty")
    _out, err = last.communicate(timeout=120)
    assert last.returncode == 0, err.decode()
    assert counts(db) == {"sent": N}
    ids = smtp_server.handler.message_ids()
    total = sum(ids.values())
    with db.transaction() as session:
        expected = set(session.execute(sa.select(D.c.message_id)).scalars())
    assert set(ids) == expected and len(ids) == N
    repeats = total - N
    # Per kill: what the server took since the last write of outcomes (at most FLUSH_EVERY,
    # plus those completed while a write was under way), the previous batch's unwritten tail,
    # and what was on the wire: far less than a batch.
    bound = kills * (3 * FLUSH_EVERY + CONNECTIONS)
    assert repeats <= bound, f"{repeats} repeats after {kills} kills (bound {bound})"
    # a repeat is the same message again: same Message-ID, same recipient
    by_id: dict[str, set[str]] = {}
    for r in smtp_server.handler.received:
        by_id.setdefault(r.message_id, set()).add(r.rcpt_tos[0])
    assert all(len(rcpts) == 1 for rcpts in by_id.values())
    print(f"{kills} kills, {repeats} repeated messages of {N}")


@pytest.mark.slow
def test_three_workers_share_one_outbox_without_duplicates(
    db: Database, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    n = 5000
    add_subscribers(db, n)
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == n
    env = worker_env(db.url, smtp_server.url, DIGEST_SMTP_CONNECTIONS="4")
    procs = [
        start_worker(env, tmp_path, "--batch-size", "200", "--until-empty", "--json")
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=170) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    assert counts(db) == {"sent": n}
    ids = smtp_server.handler.message_ids()
    assert len(ids) == n and set(ids.values()) == {1}
    totals = [json.loads(out)["counts"].get("sent", 0) for out, _ in outputs]
    assert sum(totals) == n  # the workers' own counts agree: nobody sent anything twice
    if db.dialect == "postgresql":
        # SKIP LOCKED lets them claim side by side: each one sends a share.
        assert all(t > 0 for t in totals), totals


def test_sigterm_finishes_in_flight_mail_and_gives_leases_back(
    db: Database,
    faulty_smtp_server,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Every message takes 2 s at the server: the worker is mid-send when SIGTERM comes.
    server = faulty_smtp_server(
        rcpt_faults=0, data_faults=0, drop_rate=0, stall_rate=1.0, stall_seconds=2.0
    )
    server.handler.stall_reply = "250"  # type: ignore[attr-defined]
    add_subscribers(db, 300)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    env = worker_env(db.url, server.url, DIGEST_SMTP_CONNECTIONS="3")
    proc = start_worker(env, tmp_path, "--batch-size", "100")
    # SIGTERM once a message is on the wire (the server holds it), not after a fixed wait: on a
    # slow machine a fixed wait can end before the first message goes, or after a second or
    # third round of messages has gone.
    deadline = time.monotonic() + 60
    while not server.handler.faults["stall"]:  # type: ignore[attr-defined]
        if proc.poll() is not None:
            pytest.fail(proc.stderr.read().decode())  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no message reached the server within 60 s")
        time.sleep(0.02)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=40)
    took = time.monotonic() - started
    assert proc.returncode == 0, err.decode()
    assert took < 30
    final = counts(db)
    assert "sending" not in final
    assert sum(final.values()) == 300
    assert final.get("queued", 0) >= 300 - 3 * 2  # only what was on the wire was tried
    assert b"worker stopped" in err
