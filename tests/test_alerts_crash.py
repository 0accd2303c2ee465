"""Crash safety of an alert: a worker killed with SIGKILL while sending one to 5,000 readers,
then a second worker finishes it. Everyone who opted in gets it, nobody else does, and a
repeat (only what was in flight when the first died) carries the same Message-ID."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.alerts import raise_alert
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.worker import FLUSH_EVERY
from digest.models import Delivery
from tests.support.alerts import newsletter_settings, post, readers
from tests.support.smtp_server import SmtpServer
from tests.support.workers import start_worker, worker_env

D = Delivery.__table__  # type: ignore[attr-defined]
N = 5000
CONNECTIONS = 4


@pytest.mark.slow
def test_sigkill_during_an_alert_to_5000_readers_then_a_second_worker_finishes_it(
    db: Database, settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    newsletter_settings(db, quiet_hours="off")  # whatever the hour the test runs at
    opted = [f"r{i}@example.org" for i in range(N)]
    readers(db, opted)
    readers(db, [f"digest-only{i}@example.org" for i in range(100)], alerts=False)
    report = raise_alert(db, settings, str(post(db)), now=utcnow())
    assert report.queued == N
    env = worker_env(db.url, smtp_server.url, DIGEST_SMTP_CONNECTIONS=str(CONNECTIONS))
    first = start_worker(env, tmp_path, "--batch-size", "200")
    deadline = time.monotonic() + 60
    # Killed mid-alert: once a few hundred have gone, far from all of them.
    while len(smtp_server.handler.received) < 300 and time.monotonic() < deadline:
        if first.poll() is not None:
            pytest.fail(first.stderr.read().decode())  # type: ignore[union-attr]
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    first.stdout.close()  # type: ignore[union-attr]
    first.stderr.close()  # type: ignore[union-attr]
    before = len(smtp_server.handler.received)
    assert 0 < before < N, before
    second = start_worker(env, tmp_path, "--batch-size", "200", "--until-empty")
    _out, err = second.communicate(timeout=170)
    assert second.returncode == 0, err.decode()
    with db.transaction() as session:
        states = dict(
            session.execute(
                sa.select(D.c.status, sa.func.count())
                .where(D.c.kind == "alert")
                .group_by(D.c.status)
            ).all()
        )
        kept = dict(session.execute(sa.select(D.c.to_email, D.c.message_id)).all())
    assert states == {"sent": N}
    got: dict[str, set[str]] = {}
    for r in smtp_server.handler.received:
        got.setdefault(r.rcpt_tos[0], set()).add(r.message_id)
    assert sorted(got) == sorted(opted)  # everyone who opted in, nobody else
    # Each reader's copies are one message: the Message-ID the outbox keeps for them.
    assert all(ids == {kept[address]} for address, ids in got.items())
    repeats = len(smtp_server.handler.received) - N
    assert repeats <= 3 * FLUSH_EVERY + CONNECTIONS, repeats
    print(f"killed after {before} of {N}; {repeats} repeated")
