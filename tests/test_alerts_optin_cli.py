"""The alerts opt-in and newsletters' alert settings from the command line and the admin API,
through the real entry point and real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from digest.db import Database
from digest.web.app import create_app
from tests.support.alert_outbox import queue, statuses
from tests.support.cli import run

TOKEN = "admin-token-0123456789abcdef"


def _subscription(capsys: pytest.CaptureFixture[str], email: str) -> dict[str, object]:
    r = run(capsys, "subscribers", "show", email, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)  # type: ignore[no-any-return]


def test_subscribers_add_opts_in_and_out_and_show_and_list_say_so(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "subscribers", "add", "ann@example.com", "--alerts", "--confirmed").code == 0
    assert run(capsys, "subscribers", "add", "bob@example.com", "--confirmed").code == 0
    shown = _subscription(capsys, "ann@example.com")
    assert shown["alerts"] is True and shown["subscriptions"][0]["alerts"] is True  # type: ignore[index]
    text = run(capsys, "subscribers", "show", "ann@example.com").out
    assert "alerts: True" in text
    listed = json.loads(run(capsys, "subscribers", "list", "--json").out)
    assert [(r["email"], r["alerts"]) for r in listed] == [
        ("ann@example.com", True),
        ("bob@example.com", False),
    ]
    # Updating without the flag keeps the choice; --no-alerts takes it back.
    assert run(capsys, "subscribers", "add", "ann@example.com", "--name", "Ann").code == 0
    assert _subscription(capsys, "ann@example.com")["alerts"] is True
    waiting = queue(cli_env, int(shown["id"]), "ann@example.com", "1/alert:4")  # type: ignore[call-overload]
    assert run(capsys, "subscribers", "add", "ann@example.com", "--no-alerts").code == 0
    assert _subscription(capsys, "ann@example.com")["alerts"] is False
    assert statuses(cli_env, [waiting]) == ["cancelled"]


def test_import_reads_an_alerts_column_and_export_writes_it(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    own = tmp_path / "own.csv"
    own.write_text(
        "email,status,alerts\n"
        "a@example.com,active,1\nb@example.com,active,TRUE\nc@example.com,active,yes\n"
        "d@example.com,active,Y\ne@example.com,active,on\nf@example.com,active,off\n"
        "g@example.com,active,\nh@example.com,active,maybe\n",
        encoding="utf-8",
    )
    r = run(capsys, "subscribers", "import", str(own), "--status", "active")
    assert r.code == 3  # one row rejected, the rest in
    assert "line 9: h@example.com: alerts must be" in r.err
    # Another tool's file, its column named with --map.
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("Email Address,Breaking\ni@example.com,on\n", encoding="utf-8")
    r = run(
        capsys,
        "subscribers",
        "import",
        str(theirs),
        "--status",
        "active",
        "--map",
        "Breaking=alerts",
    )
    assert r.code == 0, r.err
    bad_map = run(capsys, "subscribers", "import", str(theirs), "--map", "Breaking=alert")
    assert bad_map.code != 0 and "alerts" in bad_map.err and "Traceback" not in bad_map.err

    exported = run(capsys, "subscribers", "export").out
    rows = {row["email"]: row["alerts"] for row in csv.DictReader(io.StringIO(exported))}
    assert rows == {
        "a@example.com": "true",
        "b@example.com": "true",
        "c@example.com": "true",
        "d@example.com": "true",
        "e@example.com": "true",
        "f@example.com": "false",
        "g@example.com": "false",
        "i@example.com": "true",
    }
    # What export writes, import reads back unchanged.
    again = tmp_path / "again.csv"
    again.write_text(exported, encoding="utf-8")
    r = run(capsys, "subscribers", "import", str(again))
    assert r.code == 0 and "8 unchanged" in r.out, r.out + r.err


def test_newsletters_take_alert_settings_and_show_them(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(
        capsys,
        *("newsletters", "add", "news", "--name", "News", "--alert-budget", "3"),
        *("--quiet-hours", "23:00-06:30", "--alert-expiry-hours", "1.5"),
        *("--alert-categories", "Breaking, Live"),
    )
    assert r.code == 0, r.err
    shown = json.loads(run(capsys, "newsletters", "show", "news", "--json").out)
    assert {k: shown[k] for k in shown if k.startswith(("alert", "quiet"))} == {
        "alerts": True,
        "alert_budget": 3,
        "quiet_hours": "23:00-06:30",
        "alert_expiry_hours": 1.5,
        "alert_categories": ["Breaking", "Live"],
    }
    effective = shown["effective"]
    assert (effective["quiet_hours"], effective["alert_expiry_hours"]) == ("23:00-06:30", 1.5)
    # Unset, they follow the settings, and show says so.
    text = run(capsys, "newsletters", "show", "digest").out
    assert "quiet_hours:  (from the settings: 22:00-07:00)" in text
    assert "alert_budget:  (from the settings: 2)" in text

    assert (
        run(capsys, "newsletters", "edit", "news", "--no-alerts", "--quiet-hours", "off").code == 0
    )
    listed = json.loads(run(capsys, "newsletters", "list", "--json").out)
    news = next(n for n in listed if n["slug"] == "news")
    assert (news["alerts"], news["quiet_hours"], news["effective"]["alerts"]) == (
        False,
        "off",
        False,
    )
    assert run(capsys, "newsletters", "edit", "news", "--quiet-hours", "").code == 0
    assert (
        json.loads(run(capsys, "newsletters", "show", "news", "--json").out)["quiet_hours"] is None
    )


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--quiet-hours", "25:00-07:00", "quiet hours are HH:MM-HH:MM"),
        ("--quiet-hours", "late", "quiet hours are HH:MM-HH:MM"),
        ("--alert-budget", "25", "alert budget must be 0-24"),
        ("--alert-budget", "-1", "alert budget must be 0-24"),
        ("--alert-expiry-hours", "0", "alert expiry must be more than 0"),
        ("--alert-expiry-hours", "49", "at most 48 hours"),
    ],
)
def test_bad_alert_settings_get_one_line(
    cli_env: Database, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    r = run(capsys, "newsletters", "edit", "digest", f"{option}={value}")
    assert r.code != 0 and says in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


def test_pausing_a_newsletters_alerts_keeps_its_readers_opt_ins(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "subscribers", "add", "ann@example.com", "--alerts", "--confirmed").code == 0
    assert run(capsys, "newsletters", "edit", "digest", "--no-alerts").code == 0
    assert _subscription(capsys, "ann@example.com")["alerts"] is True
    assert run(capsys, "newsletters", "edit", "digest", "--alerts").code == 0
    assert _subscription(capsys, "ann@example.com")["alerts"] is True


async def test_admin_api_newsletters_and_subscribers_carry_alerts(
    db: Database, make_settings, capsys: pytest.CaptureFixture[str], cli_env: Database
) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "subscribers", "add", "ann@example.com", "--alerts", "--confirmed").code == 0
    settings = make_settings(database_url=db.url, admin_token=TOKEN)
    transport = httpx.ASGITransport(app=create_app(settings, db), client=("203.0.113.5", 40000))
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as http:
        made = await http.post(
            "/api/newsletters",
            json={
                "slug": "news",
                "name": "News",
                "alerts": False,
                "alert_budget": 4,
                "quiet_hours": "21:30-06:00",
                "alert_expiry_hours": 2,
                "alert_categories": ["Breaking"],
            },
        )
        patched = await http.patch(
            "/api/newsletters/news", json={"alerts": True, "quiet_hours": "off"}
        )
        bad = await http.patch("/api/newsletters/news", json={"quiet_hours": "soon"})
        bad_budget = await http.patch("/api/newsletters/news", json={"alert_budget": 99})
        people = await http.get("/api/subscribers")
        theirs = await http.get("/api/subscribers/ann@example.com/subscriptions")
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["alerts"], body["alert_budget"], body["quiet_hours"]) == (False, 4, "21:30-06:00")
    assert (body["alert_expiry_hours"], body["alert_categories"]) == (2, ["Breaking"])
    assert patched.status_code == 200
    assert (patched.json()["alerts"], patched.json()["quiet_hours"]) == (True, "off")
    assert bad.status_code == bad_budget.status_code == 422
    assert "quiet hours" in bad.json()["error"] and "alert budget" in bad_budget.json()["error"]
    assert people.json()["items"][0]["alerts"] is True
    assert theirs.json()["subscriptions"][0]["alerts"] is True
