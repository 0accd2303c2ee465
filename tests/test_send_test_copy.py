"""``digest send --test``: one copy, now, tried once through the configured transport; a refusal
or an unreachable server is an error with the server's reply, and nothing is left to retry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from digest.db import Database
from digest.delivery.running import drain
from digest.models import Delivery
from tests.support.cli import run
from tests.support.smtp_server import SmtpServer, free_port
from tests.test_cli_send import env, noon  # noqa: F401  (the same store, posts and clock)


def _deliveries(db: Database) -> int:
    with db.transaction() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(Delivery)).scalar_one())


def test_a_refused_test_copy_exits_non_zero_with_the_reply_and_queues_nothing(
    env: Path,  # noqa: F811
    db: Database,
    faulty_smtp_server: Callable[..., SmtpServer],
    make_settings,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = faulty_smtp_server(rcpt_faults=0, data_faults=0, drop_rate=0)
    monkeypatch.setenv("DIGEST_SMTP_URL", server.url)
    r = run(capsys, "send", "--test", "unknown@brief.example")
    assert r.code == 69, r
    assert "550 5.1.1" in r.err and "unknown@brief.example" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert _deliveries(db) == 0
    r = run(capsys, "send", "--test", "editor@brief.example")
    assert r.code == 0 and "1 sent" in r.out and "250" in r.out
    (received,) = server.handler.received  # type: ignore[attr-defined]
    assert received.rcpt_tos == ("editor@brief.example",)
    assert _deliveries(db) == 0


def test_an_unreachable_server_exits_non_zero_and_nothing_is_retried_later(
    env: Path,  # noqa: F811
    db: Database,
    make_settings,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    smtp_server: SmtpServer,
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("DIGEST_SMTP_TIMEOUT", "5")
    r = run(capsys, "send", "--test", "editor@brief.example")
    assert r.code == 69, r
    assert "not sent" in r.err and "cannot connect" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert _deliveries(db) == 0
    # When the server is back, a worker finds nothing of the test to send after all.
    settings = make_settings(database_url=db.url, smtp_url=smtp_server.url)
    assert drain(settings, db).sent == 0
    assert smtp_server.handler.received == []  # type: ignore[attr-defined]
