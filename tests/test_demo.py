"""``digest demo`` keeps to a store and an outbox of its own: it never writes into the
configured store or mails real subscribers, and the README's first command runs twice.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from digest import subscriptions
from digest.db import Database
from digest.models import Delivery, Subscriber
from digest.posts import store as posts
from tests.support.cli import run
from tests.support.serve import DIGEST
from tests.support.smtp_server import SmtpServer

D = Delivery.__table__  # type: ignore[attr-defined]
S = Subscriber.__table__  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def noon() -> Iterator[None]:
    """Noon UTC, still ticking: every sample zone stays in one period during a test."""
    with time_machine.travel(datetime(2026, 11, 29, 12, 0, tzinfo=UTC), tick=True):
        yield


def _emails(db: Database) -> set[str]:
    with db.transaction() as s:
        return set(s.execute(sa.select(S.c.email)).scalars())


def _deliveries(db: Database) -> int:
    with db.transaction() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(D)).scalar_one())


@pytest.fixture
def live(cli_env: Database, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Database:
    """A configured store with a real reader and news, and a real SMTP relay."""
    monkeypatch.setenv("DIGEST_SMTP_URL", smtp_server.url)
    with cli_env.transaction() as s:
        subscriptions.add(s, "reader@example.com", confirmed=True)
        posts.add_post(s, title="Real news", url="https://news.example/real")
    return cli_env


def test_the_demo_never_touches_the_configured_store_or_mails_anyone(
    live: Database, smtp_server: SmtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "demo")
    assert r.code == 0, r.err
    assert "4 sent" in r.out
    assert f"store: {tmp_path / 'var' / 'demo' / 'digest.db'}" in r.out
    assert len(list((tmp_path / "var" / "demo" / "outbox").glob("*.eml"))) == 4
    assert smtp_server.handler.received == []  # the configured relay saw nothing
    assert _emails(live) == {"reader@example.com"}  # no sample subscriber in the real store
    assert _deliveries(live) == 0  # and no digest for the real reader


def test_the_demo_refuses_a_configured_store_with_subscribers_of_its_own(
    live: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DIGEST_SMTP_URL", f"file:{tmp_path / 'outbox'}")
    r = run(capsys, "demo", "--configured-store")
    assert r.code == 78 and "has 1 subscriber(s) of its own" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert _emails(live) == {"reader@example.com"} and _deliveries(live) == 0
    assert not (tmp_path / "outbox").exists()


def test_the_demo_may_run_in_an_empty_configured_store_and_again(
    cli_env: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DIGEST_SMTP_URL", f"file:{tmp_path / 'outbox'}")
    first = run(capsys, "demo", "--configured-store")
    assert first.code == 0 and "4 sent" in first.out, first.err
    again = run(capsys, "demo", "--configured-store")  # only its own samples are there
    assert again.code == 0 and "already has this period's digest" in again.out, again.err
    assert len(_emails(cli_env)) == 4
    assert not (tmp_path / "var" / "demo" / "digest.db").exists()  # it used the configured one


def test_the_readmes_first_command_runs_twice(tmp_path: Path) -> None:
    """`.venv/bin/digest demo`, twice, as the README has it, in a fresh folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    for _ in range(2):
        done = subprocess.run(
            [DIGEST, "demo"],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert (tmp_path / "var" / "demo" / "digest.db").exists()
    assert not (tmp_path / "var" / "digest.db").exists()  # the configured store is untouched
