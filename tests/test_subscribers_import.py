"""Moving a list over from Mailchimp, listmonk, Ghost or Substack, on both stores.

The files under tests/imports/ are written by hand in the shape each tool's export has: the
column names and value formats of Mailchimp's subscribed, unsubscribed and cleaned files, of
listmonk's subscriber export, Ghost's member export and Substack's subscriber export.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest import subscribers as store
from digest import subscribers_csv as csvio
from digest import subscriptions
from digest.db import Database
from digest.errors import ConsentNotShown
from tests.support.cli import run

SAMPLES = Path(__file__).parent / "imports"


def _import(db: Database, name: str, status: str | None = None, **maps: str) -> csvio.ImportReport:
    """Import a sample; ``maps`` as ``--map COLUMN=field`` gives them."""
    with db.transaction() as s:
        rows = csvio.read_rows(csvio.open_csv(SAMPLES / name), maps)
        return csvio.import_rows(s, rows, status=status)


def _people(db: Database) -> dict[str, dict]:
    with db.transaction() as s:
        return {x.email: x.as_dict() for x in store.list_readers(s)}


def test_a_mailchimp_audience_keeps_its_consent_and_its_leavers_stay_unmailed(
    db: Database,
) -> None:
    with pytest.raises(ConsentNotShown, match="1 of 3 rows show no consent"):
        _import(db, "mailchimp_subscribed.csv")
    assert _people(db) == {}  # refused whole: nothing written
    report = _import(db, "mailchimp_subscribed.csv", status="pending")
    assert (report.added, report.errors) == (3, [])
    for name in ("mailchimp_unsubscribed.csv", "mailchimp_cleaned.csv"):
        assert _import(db, name).added == 1  # leavers need no --status: nobody mails them
    people = _people(db)
    ann = people["ann@example.com"]
    assert (ann["name"], ann["status"], ann["timezone"]) == ("Ann Lee", "active", "Europe/Paris")
    assert ann["consent_at"].replace(tzinfo=UTC) == datetime(2024, 1, 5, 10, 22, 1, tzinfo=UTC)
    assert ann["confirmed_at"].replace(tzinfo=UTC) == datetime(2024, 1, 5, 10, 25, 40, tzinfo=UTC)
    assert (ann["consent_ip"], ann["consent_source"]) == ("203.0.113.7", "import:mailchimp")
    assert ann["topics"] == []  # tags are not topics unless --map says so
    assert people["bob@example.com"]["status"] == "active"  # CONFIRM_TIME shows consent
    assert people["cleo@example.com"]["status"] == "pending"  # no times: the operator's word
    assert people["dan@example.com"]["status"] == "unsubscribed"
    assert people["dan@example.com"]["unsubscribed_at"] is not None
    assert people["eve@example.com"]["status"] == "bounced"


def test_tags_become_topics_when_mapped(db: Database) -> None:
    _import(db, "mailchimp_subscribed.csv", status="pending", TAGS="topics")
    people = _people(db)
    assert people["ann@example.com"]["topics"] == ["Sports", "Local"]
    assert people["cleo@example.com"]["topics"] == ["Local"]


def test_listmonk_ghost_and_substack_exports(db: Database) -> None:
    with pytest.raises(ConsentNotShown):
        _import(db, "listmonk.csv")
    for name in ("listmonk.csv", "ghost.csv", "substack.csv"):
        assert not _import(db, name, status="active").errors
    people = _people(db)
    fay = people["fay@example.com"]
    assert (fay["name"], fay["status"]) == ("Fay", "active")
    assert fay["created_at"].replace(tzinfo=UTC) == datetime(2024, 2, 10, 8, 15, 30, 123456, UTC)
    assert people["gus@example.com"]["status"] == "unsubscribed"  # blocklisted
    assert (people["hal@example.com"]["name"], people["hal@example.com"]["status"]) == (
        "Hal Jones",
        "active",
    )
    assert people["ivy@example.com"]["status"] == "unsubscribed"  # subscribed_to_emails=false
    assert people["jon@example.com"]["status"] == "active"
    assert people["kim@example.com"]["status"] == "unsubscribed"  # email_disabled=true
    again = [_import(db, n, status="active") for n in ("listmonk.csv", "ghost.csv")]
    assert [(r.added, r.updated) for r in again] == [(0, 0), (0, 0)]


def test_an_import_never_brings_back_someone_who_left_even_with_status_active(
    db: Database,
) -> None:
    with db.transaction() as s:
        subscriptions.unsubscribe(s, subscriptions.add(s, "hal@example.com", confirmed=True))
    _import(db, "ghost.csv", status="active")
    assert _people(db)["hal@example.com"]["status"] == "unsubscribed"


def test_cli_dry_run_shows_the_mapping_and_writes_nothing(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = str(SAMPLES / "mailchimp_subscribed.csv")
    r = run(capsys, "subscribers", "import", sample, "--dry-run")
    assert r.code == 0, r.err
    assert "mailchimp file, 3 rows" in r.out
    assert "  OPTIN_TIME -> consent_at" in r.out and "  MEMBER_RATING -> ignored" in r.out
    assert "line 2: status=active, email=ann@example.com, name=Ann Lee" in r.out
    assert "consent_source=import:mailchimp" in r.out
    assert "1 of 3 rows show no consent: they need --status" in r.out
    r = run(capsys, "subscribers", "import", sample, "--dry-run", "--json", "--status", "pending")
    shown = json.loads(r.out)
    assert shown["without_consent"] == 1 and shown["first_rows"][2]["status"] == "pending"
    assert {"column": "TAGS", "field": "ignored"} in shown["columns"]
    assert json.loads(run(capsys, "subscribers", "list", "--json").out) == []


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ((), 64, "1 of 3 rows show no consent (no consent or confirmation time): pass --status"),
        (("--map", "Nope=name"), 65, "--map names 'Nope', which is not a column of this file"),
        (("--map", "TAGS=labels"), 65, "'labels' is none of digest's columns"),
        (("--map", "TAGS"), 65, "--map takes 'Their Column=field'"),
    ],
)
def test_cli_refusals_are_one_line_and_write_nothing(
    cli_env: Database,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    words: str,
) -> None:
    r = run(capsys, "subscribers", "import", str(SAMPLES / "mailchimp_subscribed.csv"), *args)
    assert (r.code, len(r.err.strip().splitlines())) == (code, 1)
    assert words in r.err
    assert json.loads(run(capsys, "subscribers", "list", "--json").out) == []


def test_cli_an_unknown_column_is_named_and_map_lets_it_in(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "crm.csv"
    src.write_text("Mail,Full Name,Phone\nann@example.com,Ann,555\n", encoding="utf-8")
    r = run(capsys, "subscribers", "import", str(src))
    assert r.code == 66 and len(r.err.strip().splitlines()) == 1
    assert "no 'email' column" in r.err and "--map" in r.err and "Mailchimp" in r.err
    maps = ("--map", "Mail=email", "--map", "Full Name=name")
    r = run(capsys, "subscribers", "import", str(src), *maps)
    assert r.code == 66 and "unknown column 'Phone'" in r.err
    r = run(capsys, "subscribers", "import", str(src), *maps, "--map", "Phone=ignore")
    assert r.code == 64 and "--status" in r.err
    r = run(
        capsys, "subscribers", "import", str(src), *maps, "--map", "Phone=ignore", "--status=active"
    )
    assert r.code == 0 and "1 added" in r.out
    listed = json.loads(run(capsys, "subscribers", "list", "--json").out)
    assert [(p["email"], p["name"], p["status"]) for p in listed] == [
        ("ann@example.com", "Ann", "active")
    ]
