"""The faces of bounce handling: ``digest bounces import`` and ``POST /api/bounces...``."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from digest import subscribers, subscriptions
from digest.db import Database
from digest.web.app import create_app
from tests.support.bounces import complaint, dsn, report_file, sent_edition, status_of
from tests.support.cli import run
from tests.support.smtp_server import SmtpServer

# -- the command ---------------------------------------------------------------------------------


def test_import_reads_a_maildir_and_stdin_and_says_what_it_did(
    cli_env: Database,
    make_settings: Callable[..., Any],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _settings, ids = sent_edition(cli_env, make_settings, smtp_server)
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(dsn("p0@example.org", ids["p0@example.org"]))
    (maildir / "cur" / "2.eml").write_bytes(report_file("out-of-office.eml"))
    (maildir / "tmp" / "3.eml").write_bytes(b"half-written")
    r = run(capsys, "bounces", "import", str(maildir))
    assert r.code == 0, r.err
    assert "2 message(s): 1 hard bounce(s)" in r.out
    assert "1 subscriber(s) stopped" in r.out
    assert "not a report: " in r.out and "2.eml" in r.out

    monkeypatch.setattr("sys.stdin", _Stdin(complaint("p1@example.org", ids["p1@example.org"])))
    r = run(capsys, "bounces", "import", "-")
    assert r.code == 0 and "1 complaint(s)" in r.out and "1 subscriber(s) stopped" in r.out
    assert status_of(cli_env, "p0@example.org") == ("bounced", "bounced")
    assert status_of(cli_env, "p1@example.org") == ("complained", "sent")


def test_a_message_the_store_refuses_is_listed_and_the_others_are_recorded(
    sqlite_db: Database,
    make_settings: Callable[..., Any],
    smtp_server: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A fault injected in the real store (a trigger refusing p0's row) fails p0's report the
    same way on every retry: it is listed, p1's is recorded, and the exit code is 65, not 75."""
    _settings, ids = sent_edition(sqlite_db, make_settings, smtp_server)
    monkeypatch.setenv("DIGEST_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    with sqlite_db.transaction() as session:
        session.execute(
            sa.text(
                "CREATE TRIGGER refuse_p0 BEFORE UPDATE ON deliveries "
                "WHEN old.to_email = 'p0@example.org' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.eml").write_bytes(dsn("p0@example.org", ids["p0@example.org"]))
    (folder / "b.eml").write_bytes(dsn("p1@example.org", ids["p1@example.org"]))
    r = run(capsys, "bounces", "import", str(folder))
    assert r.code == 65
    assert "not recorded: " in r.out and "a.eml" in r.out and "refused" in r.out
    assert r.err.strip() == "error: 1 message(s) could not be recorded"
    assert status_of(sqlite_db, "p0@example.org") == ("active", "sent")
    assert status_of(sqlite_db, "p1@example.org") == ("bounced", "bounced")


def test_import_with_the_store_down_exits_75_so_the_mta_keeps_the_mail(
    make_settings: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_settings()
    monkeypatch.setenv("DIGEST_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "k" * 40)
    monkeypatch.setattr("sys.stdin", _Stdin(dsn("p0@example.org", "<e1.1@news.example>")))
    r = run(capsys, "bounces", "import", "-")
    assert r.code == 75
    assert len(r.err.strip().splitlines()) == 1
    assert r.err.startswith("error: reports not recorded, try again later")


def test_import_of_a_missing_path_is_one_line_and_writes_nothing(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(report_file("postfix-user-unknown.eml"))
    with cli_env.transaction() as session:
        subscriptions.add(session, "gone@example.com", confirmed=True)
    r = run(capsys, "bounces", "import", str(good), str(tmp_path / "missing"))
    assert r.code == 66
    assert r.err.strip().splitlines() == [f"error: no such file or folder: {tmp_path / 'missing'}"]
    with cli_env.transaction() as session:
        assert subscribers.reader(session, "gone@example.com").status == "active"


class _Stdin:
    """Stands in for sys.stdin: the command reads ``sys.stdin.buffer``."""

    def __init__(self, data: bytes, *, terminal: bool = False) -> None:
        self.buffer = io.BytesIO(data)
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def test_import_with_nothing_to_read_says_so_instead_of_waiting_on_the_terminal(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin(b"", terminal=True))
    r = run(capsys, "bounces", "import")
    assert r.code == 65
    assert r.err.strip() == "error: give files or folders to read, or pipe one message in ('-')"


# -- the admin API -------------------------------------------------------------------------------

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def _api(db: Database, make_settings: Callable[..., Any]) -> httpx.AsyncClient:
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_the_api_records_webhook_events_and_report_mails(
    db: Database, make_settings: Callable[..., Any], smtp_server: SmtpServer
) -> None:
    # drain runs an event loop of its own, so not on this test's.
    _settings, ids = await asyncio.to_thread(sent_edition, db, make_settings, smtp_server)
    events = {
        "events": [
            {"type": "hard", "email": "P0@example.org", "detail": "mailbox does not exist"},
            {"type": "complaint", "message_id": ids["p1@example.org"]},
            {"type": "soft", "email": "nobody@elsewhere.example"},
        ]
    }
    big_report = dsn("p2@example.org", ids["p2@example.org"], status="5.2.2") + b"x" * 40_000
    async with _api(db, make_settings) as http:
        assert (await http.post("/api/bounces", json=events)).status_code == 401
        answer = await http.post("/api/bounces", json=events, headers=AUTH)
        again = await http.post("/api/bounces", json=events, headers=AUTH)
        mail = await http.post(
            "/api/bounces/report",
            content=big_report,
            headers={**AUTH, "content-type": "message/rfc822"},
        )
        not_report = await http.post(
            "/api/bounces/report",
            content=report_file("out-of-office.eml"),
            headers={**AUTH, "content-type": "message/rfc822"},
        )
        no_address = await http.post(
            "/api/bounces", json={"events": [{"type": "hard"}]}, headers=AUTH
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "hard": 1, "soft": 1, "delayed": 0, "complaint": 1, "unsubscribe": 0, "unmatched": 1,
        "stopped": 2,
    }  # fmt: skip
    assert again.json()["stopped"] == 0
    assert mail.status_code == 200 and mail.json()["soft"] == 1
    assert not_report.status_code == 422
    assert "not a multipart/report" in not_report.json()["error"]
    assert no_address.status_code == 200 and no_address.json()["unmatched"] == 1
    assert status_of(db, "p0@example.org")[0] == "bounced"
    assert status_of(db, "p1@example.org")[0] == "complained"
    assert status_of(db, "p2@example.org") == ("active", "bounced")


async def test_odd_events_are_unmatched_without_failing_the_batch_or_the_store(
    db: Database, make_settings: Callable[..., Any]
) -> None:
    with db.transaction() as session:
        subscriptions.add(session, "ann@example.com", confirmed=True)
    events = {
        "events": [
            {"type": "hard", "email": '"weird local"@example.net'},
            {"type": "complaint", "message_id": "<a\u0000b@x.example>", "detail": "\u001b]0;x"},
            {"type": "hard", "email": "ann@example.com", "detail": "gone\u0000"},
            {"type": "soft"},
            {"type": "soft", "email": "x" * 400 + "@example.com", "detail": "y" * 5000},
        ]
    }
    async with _api(db, make_settings) as http:
        answer = await http.post("/api/bounces", json=events, headers=AUTH)
        big = await http.post(
            "/api/editions",
            content=b"{" + b" " * 20_000 + b"}",
            headers={**AUTH, "content-type": "application/json"},
        )

        async def chunks() -> Any:
            yield b"{"
            for _ in range(20):
                yield b" " * 1000
            yield b"}"

        chunked = await http.post(
            "/api/editions", content=chunks(), headers={**AUTH, "content-type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["unmatched"], answer.json()["stopped"]) == (4, 1)
    # Only the bounce routes take large bodies; declared or chunked, the answer is a 413.
    assert big.status_code == 413 and chunked.status_code == 413, chunked.text
    with db.transaction() as session:
        assert subscribers.reader(session, "ann@example.com").status == "bounced"
