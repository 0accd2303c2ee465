"""``digest announce`` as an operator types it, on both stores: the id alone on stdout, dry
runs, one-line refusals, scheduling, sending twice, cancelling, show and list for programs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from digest import newsletters, subscriptions
from digest.clock import utcnow
from digest.db import Database
from tests.support.cli import Result, run

BODY = (
    "# Our podcast\n\nListen to [episode one](https://pod.example.com/1).\n<script>x()</script>\n"
)


def _readers(db: Database, *emails: str, newsletter_id: int = 1, **fields) -> None:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        for email in emails:
            subscriptions.add(session, email, newsletter_id=newsletter_id, confirmed=True, **fields)


@pytest.fixture
def body(tmp_path: Path) -> str:
    path = tmp_path / "body.md"
    path.write_text(BODY, encoding="utf-8")
    return str(path)


def _one_line_error(result: Result, words: str) -> None:
    assert result.code != 0
    assert result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("error: "), result.err
    assert words in result.err


def _create(capsys: pytest.CaptureFixture[str], body: str, *extra: str) -> int:
    made = run(capsys, "announce", "create", "--subject", "Podcast!", "--body-file", body, *extra)
    assert made.code == 0, made.err
    assert made.out.count("\n") == 1
    return int(made.out)


def test_create_prints_only_the_id_and_show_gives_it_back(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    _readers(cli_env, "a@example.com", "b@example.com")
    ident = _create(capsys, body, "--newsletter", "digest")
    shown = run(capsys, "announce", "show", str(ident), "--json")
    data = json.loads(shown.out)
    assert {k: data[k] for k in ("id", "newsletter", "subject", "status", "recipients")} == {
        "id": ident,
        "newsletter": "digest",
        "subject": "Podcast!",
        "status": "draft",
        "recipients": 0,
    }
    assert data["deliveries"] == {} and data["send_at"] is None and data["local_hour"] is None
    listed = json.loads(run(capsys, "announce", "list", "--json").out)
    assert [a["id"] for a in listed] == [ident]


def test_dry_runs_show_the_audience_and_write_nothing(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    _readers(cli_env, *(f"r{i:02d}@example.com" for i in range(12)))
    _readers(cli_env, "sport@example.com", topics="sport")
    dry = run(capsys, "announce", "create", "--subject", "S", "--body-file", body, "--dry-run")
    assert dry.code == 0
    assert "13 readers" in dry.out and "r00@example.com" in dry.out and "and 3 more" in dry.out
    assert json.loads(run(capsys, "announce", "list", "--json").out) == []
    ident = _create(capsys, body)
    sent = run(capsys, "announce", "send", str(ident), "--dry-run")
    assert "13 readers" in sent.out
    data = json.loads(run(capsys, "announce", "show", str(ident), "--json").out)
    assert data["status"] == "draft" and data["deliveries"] == {}


def test_send_queues_once_and_cancel_reports(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    _readers(cli_env, "a@example.com", "b@example.com")
    ident = _create(capsys, body)
    first = run(capsys, "announce", "send", str(ident))
    assert first.code == 0 and "2 queued now, 2 in all" in first.out
    again = run(capsys, "announce", "send", str(ident))
    assert again.code == 0 and "0 queued now, 2 in all" in again.out
    data = json.loads(run(capsys, "announce", "show", str(ident), "--json").out)
    assert (data["status"], data["recipients"], data["deliveries"]) == ("queued", 2, {"queued": 2})
    cancelled = run(capsys, "announce", "cancel", str(ident))
    assert "2 queued mails cancelled, 0 had gone out already" in cancelled.out
    data = json.loads(run(capsys, "announce", "show", str(ident), "--json").out)
    assert data["status"] == "cancelled" and data["deliveries"] == {"cancelled": 2}
    _one_line_error(run(capsys, "announce", "cancel", str(ident)), "already cancelled")


def test_bad_input_gets_one_line_errors(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str, tmp_path: Path
) -> None:
    _readers(cli_env, "a@example.com", topics="sport")
    _one_line_error(run(capsys, "announce", "create", "--body-file", body), "needs a subject")
    empty = tmp_path / "empty.md"
    empty.write_text("\n\n")
    _one_line_error(
        run(capsys, "announce", "create", "--subject", "S", "--body-file", str(empty)), "empty"
    )
    _one_line_error(
        run(capsys, "announce", "create", "--subject", "S", "--body-file", body, "--topics", "x"),
        "matches no active reader",
    )
    with cli_env.transaction() as session:
        newsletters.add(session, "old", name="Old")
    _readers(cli_env, "a@example.com", newsletter_id=2)
    with cli_env.transaction() as session:
        newsletters.archive(session, newsletters.get(session, "old"))
    archived = run(
        capsys, "announce", "create", "--newsletter", "old", "--subject", "S", "--body-file", body
    )
    _one_line_error(archived, "archived")
    ident = _create(capsys, body)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    _one_line_error(run(capsys, "announce", "schedule", str(ident), "--at", past), "has passed")
    _one_line_error(run(capsys, "announce", "show", "999"), "no announcement #999")
    _one_line_error(run(capsys, "announce", "send", "999"), "no announcement #999")
    neither = run(capsys, "announce", "schedule", str(ident))
    assert neither.code != 0 and "--at" in neither.err


def test_several_newsletters_need_naming(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    with cli_env.transaction() as session:
        newsletters.add(session, "tech", name="Tech")
    _readers(cli_env, "t@example.com", newsletter_id=2)
    _one_line_error(
        run(capsys, "announce", "create", "--subject", "S", "--body-file", body), "--newsletter"
    )
    ident = _create(capsys, body, "--newsletter", "tech")
    data = json.loads(run(capsys, "announce", "show", str(ident), "--json").out)
    assert data["newsletter"] == "tech"


def test_schedule_at_a_local_hour_says_which_zones_are_already_past(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    _readers(cli_env, "kiritimati@example.com", timezone="Pacific/Kiritimati")  # UTC+14
    _readers(cli_env, "samoa@example.com", timezone="Pacific/Pago_Pago")  # UTC-11
    ident = _create(capsys, body)
    # 21:00 UTC on 1 December: already 11:00 on 2 December on Kiritimati, 10:00 on 1 December
    # in Samoa. 09:00 on 2 December has passed on Kiritimati only.
    with time_machine.travel(datetime(2026, 12, 1, 21, 0, tzinfo=UTC), tick=False):
        args = ("announce", "schedule", str(ident), "--local-hour", "9", "--on", "2026-12-02")
        done = run(capsys, *args)
    assert done.code == 0, done.err
    assert "in each reader's timezone" in done.out
    assert "Pacific/Kiritimati" in done.out and "next tick" in done.out
    assert "Pago_Pago" not in done.out
    data = json.loads(run(capsys, "announce", "show", str(ident), "--json").out)
    assert (data["status"], data["local_hour"], data["local_date"]) == (
        "scheduled",
        9,
        "2026-12-02",
    )
    with time_machine.travel(datetime(2026, 12, 2, 21, 0, tzinfo=UTC), tick=False):
        late = run(capsys, *args)
    _one_line_error(late, "passed in every reader's timezone")  # a day later: past everywhere


def test_preview_shows_the_safe_body_as_a_reader_gets_it(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    _readers(cli_env, "a@example.com")
    ident = _create(capsys, body)
    text = run(
        capsys, "announce", "preview", str(ident), "--format", "text", "--to", "a@example.com"
    )
    assert text.code == 0, text.err
    assert "Listen to episode one (https://pod.example.com/1)." in text.out
    assert "Unsubscribe: http" in text.out and "x()" not in text.out
    html = run(capsys, "announce", "preview", str(ident))
    assert "<h1" in html.out and "script" not in html.out
    eml = run(capsys, "announce", "preview", str(ident), "--format", "eml")
    assert "Subject: Podcast!" in eml.out and "List-Unsubscribe:" in eml.out


def test_an_addresses_file_narrows_the_audience(
    cli_env: Database, capsys: pytest.CaptureFixture[str], body: str, tmp_path: Path
) -> None:
    _readers(cli_env, "a@example.com", "b@example.com", "c@example.com")
    listed = tmp_path / "list.txt"
    listed.write_text("# the board\nA@example.com\nc@example.com\nnot-a-reader@example.com\n")
    ident = _create(capsys, body, "--addresses", str(listed))
    sent = run(capsys, "announce", "send", str(ident))
    assert "2 queued now, 2 in all" in sent.out
    listed.write_text("a@example.com\nbroken\n")
    bad = run(
        capsys,
        "announce",
        "create",
        "--subject",
        "S",
        "--body-file",
        body,
        "--addresses",
        str(listed),
    )
    _one_line_error(bad, "line 2")
