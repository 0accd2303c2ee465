"""``digest worker`` and ``digest status`` through the real entry point."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.db import Database
from digest.models import Delivery
from tests.support.cli import run
from tests.support.outbox import add_subscribers, enqueue, make_edition

D = Delivery.__table__


@pytest.fixture(autouse=True)
def own_log_handlers() -> Iterator[None]:
    """``digest worker`` installs its log handler on the root logger, writing to the stderr of
    the moment (here, this test's capture): take it off again so later tests never write there."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, make_settings, sqlite_db: Database, tmp_path: Path
) -> Database:  # type: ignore[no-untyped-def]
    make_settings()  # clears DIGEST_* from the outside and moves into tmp_path
    monkeypatch.setenv("DIGEST_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("DIGEST_SMTP_URL", f"file:{tmp_path / 'mail'}")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-0123456789-abcdefghijklmnop")
    return sqlite_db


def test_worker_until_empty_sends_and_status_shows_it(
    env: Database,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    add_subscribers(env, 12)
    edition_id, body_id = make_edition(env)
    enqueue(env, edition_id, body_id)
    with env.transaction() as session:
        session.execute(
            sa.update(D)
            .where(D.c.subscriber_id == 3)
            .values(status="bounced", last_reply="552 full")
        )
    result = run(capsys, "worker", "--until-empty", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["counts"] == {"sent": 11}
    assert "batch of 11: 11 sent" in caplog.text  # one log line per batch
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 11

    text = run(capsys, "status")
    assert text.code == 0
    assert "sent 11" in text.out and "bounced 1" in text.out
    assert "daily:2026-11-29T07Z" in text.out
    assert "552 full" in text.out

    data = json.loads(run(capsys, "status", "--json").out)
    assert data["counts"]["sent"] == 11 and data["counts"]["queued"] == 0
    assert data["editions"][0]["counts"]["sent"] == 11
    assert data["errors"][0]["last_reply"] == "552 full"


def test_status_of_an_empty_store(env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "status")
    assert result.code == 0
    assert "editions: none yet" in result.out and "last errors: none" in result.out


def test_a_bad_smtp_url_is_one_line_and_exit_78(
    env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_URL", "smtp://")
    result = run(capsys, "worker", "--until-empty")
    assert result.code == 78
    assert result.err.strip().count("\n") == 0
    assert result.err.startswith("error: DIGEST_SMTP_URL")


def test_a_bad_from_address_is_one_line(
    env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_FROM", "no address here")
    result = run(capsys, "worker", "--until-empty")
    assert result.code == 78
    assert result.err.strip().splitlines()[-1].startswith("error: DIGEST_FROM")
    assert "Traceback" not in result.err


def test_bad_batch_size_is_refused(env: Database, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "worker", "--batch-size", "0")
    assert result.code == 2
    assert "batch-size" in result.err


@pytest.mark.parametrize("log_json", [False, True], ids=["key-value", "json"])
def test_worker_logs_as_serve_does(
    env: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log_json: bool,
) -> None:
    add_subscribers(env, 2)
    edition_id, body_id = make_edition(env)
    enqueue(env, edition_id, body_id)
    monkeypatch.setenv("DIGEST_LOG_JSON", str(log_json).lower())
    result = run(capsys, "worker", "--until-empty", "--json")
    assert result.code == 0, result.err
    # stderr holds the log lines; with --json the totals go to stdout alone.
    lines = result.err.strip().splitlines()
    assert lines
    if log_json:
        events = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all({"ts", "level", "logger", "msg"} <= set(e) for e in events)
        messages = [e["msg"] for e in events]
    else:
        assert all(line.startswith("ts=") and " level=" in line for line in lines)
        messages = [line.split(" msg=", 1)[1] for line in lines]
    assert any("worker started" in m for m in messages)
    assert any("batch of 2: 2 sent" in m for m in messages)
