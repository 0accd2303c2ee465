"""The audit log: every change through the CLI and the admin API shows in ``digest audit``,
with who, from where, what, and before/after; an erasure names the address's hash only. On
SQLite and PostgreSQL, through the real entry point and real HTTP (ASGI) requests."""

from __future__ import annotations

import getpass
import io
import json
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest import subscriptions
from digest.addresses import email_hash
from digest.clock import utcnow
from digest.db import Database
from digest.web.app import create_app
from tests.support.cli import run
from tests.support.feed_server import FeedServer

TOKEN = "admin-token-0123456789abcdef"
CLIENT_IP = "203.0.113.5"
FEEDS = Path(__file__).parent / "feeds"


def entries(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    """``digest audit --json``, newest first."""
    r = run(capsys, "audit", "--json", *args)
    assert r.code == 0, r.err
    return json.loads(r.out)  # type: ignore[no-any-return]


def by_action(rows: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["action"] == action]


def api(db: Database, make_settings) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(database_url=db.url, admin_token=TOKEN), db)
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"authorization": f"Bearer {TOKEN}"},
    )


async def test_a_cli_change_and_an_api_change_show_who_where_what_before_after(
    cli_env: Database, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "audit").out.strip() == "the audit log is empty"
    r = run(capsys, "newsletters", "add", "tech", "--name", "Tech news", "--send-hour", "8")
    assert r.code == 0, r.err
    assert run(capsys, "newsletters", "edit", "tech", "--send-hour", "9").code == 0

    async with api(cli_env, make_settings) as http:
        changed = await http.patch("/api/newsletters/tech", json={"name": "Tech weekly"})
        assert changed.status_code == 200, changed.text
        # Reading changes nothing and records nothing.
        assert (await http.get("/api/newsletters/tech")).status_code == 200

    rows = entries(capsys)
    assert [row["action"] for row in rows] == [
        "newsletter.edit",
        "newsletter.edit",
        "newsletter.add",
    ]
    from_api, from_cli, added = rows
    me = {"via": "cli", "actor": getpass.getuser(), "source": socket.gethostname()}
    assert {k: from_cli[k] for k in me} == me
    assert (from_cli["target"], from_cli["before"], from_cli["after"]) == (
        "tech",
        {"send_hour": 8},
        {"send_hour": 9},
    )
    assert {k: from_api[k] for k in ("via", "actor", "source", "target")} == {
        "via": "api",
        "actor": "admin token",
        "source": CLIENT_IP,
        "target": "tech",
    }
    assert (from_api["before"], from_api["after"]) == (
        {"name": "Tech news"},
        {"name": "Tech weekly"},
    )
    assert added["after"]["name"] == "Tech news" and added["after"]["send_hour"] == 8
    assert added["before"] is None
    assert from_api["id"] > from_cli["id"] > added["id"] and from_api["at"] >= added["at"]

    # People read it too: one line each, newest first, with the change.
    text = run(capsys, "audit", "--limit", "1").out.strip().splitlines()
    assert len(text) == 1
    assert f"api  admin token from {CLIENT_IP}  newsletter.edit  tech" in text[0]
    assert '"after": {"name": "Tech weekly"}' in text[0]


async def test_api_announcements_and_bounces_are_recorded(
    cli_env: Database, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    with cli_env.transaction() as session:
        for email in ("a@example.com", "b@example.com"):
            subscriptions.add(session, email, confirmed=True)
    new = {"subject": "Our podcast", "body": "Listen to it."}
    async with api(cli_env, make_settings) as http:
        dry = await http.post("/api/announcements", json={**new, "dry_run": True})
        assert dry.status_code == 201, dry.text  # a dry run writes nothing: no entry
        made = await http.post("/api/announcements", json=new)
        assert made.status_code == 201, made.text
        ident = made.json()["id"]
        at = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
        path = f"/api/announcements/{ident}"
        assert (await http.post(f"{path}/schedule", json={"at": at.isoformat()})).is_success
        assert (await http.post(f"{path}/send")).is_success
        assert (await http.post(f"{path}/cancel")).is_success
        # Refused (cancelled already): no change, no entry.
        assert (await http.post(f"{path}/cancel")).status_code == 409
        # A report about an address that is not ours changes nothing: no entry.
        events = {"events": [{"type": "hard", "email": "gone@example.com"}]}
        assert (await http.post("/api/bounces", json=events)).status_code == 200
        events = {"events": [{"type": "hard", "email": "b@example.com"}]}
        assert (await http.post("/api/bounces", json=events)).status_code == 200
    rows = entries(capsys)
    target = f"announcement {ident}"
    assert [(row["action"], row["target"]) for row in rows] == [
        ("bounce.record", ""),
        ("announcement.cancel", target),
        ("announcement.send", target),
        ("announcement.schedule", target),
        ("announcement.create", target),
    ]
    assert {(row["via"], row["actor"], row["source"]) for row in rows} == {
        ("api", "admin token", CLIENT_IP)
    }
    bounced, cancelled, sent, scheduled, created = rows
    assert created["after"] == {"subject": "Our podcast", "readers": 2}
    assert scheduled["before"]["status"] == "draft"
    assert scheduled["after"]["status"] == "scheduled"
    assert scheduled["after"]["send_at"].startswith(at.replace(tzinfo=None).isoformat())
    assert sent["after"] == {"queued": 2, "recipients": 2}
    assert cancelled["after"] == {"cancelled": 2, "sent": 0}
    assert (bounced["after"]["hard"], bounced["after"]["stopped"]) == (1, 1)


def test_subscriber_changes_from_the_cli(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "subscribers", "add", "Ann@Example.com", "--cadence", "daily").code == 0
    r = run(capsys, "subscribers", "add", "ann@example.com", "--cadence", "weekly", "--confirmed")
    assert r.code == 0, r.err
    assert run(capsys, "subscribers", "remove", "ann@example.com").code == 0
    # Already unsubscribed: nothing changes, nothing is recorded.
    assert run(capsys, "subscribers", "remove", "ann@example.com").code == 0
    rows = entries(capsys)
    assert [(row["action"], row["target"]) for row in rows] == [
        ("subscriber.unsubscribe", "ann@example.com"),
        ("subscriber.add", "ann@example.com"),
        ("subscriber.add", "ann@example.com"),
    ]
    gone, changed, new = rows
    assert gone["after"] == {"newsletter": "digest"}
    assert new["before"] is None and new["after"]["status"] == "pending"
    assert (changed["before"]["cadence"], changed["after"]["cadence"]) == ("daily", "weekly")
    assert (changed["before"]["status"], changed["after"]["status"]) == ("pending", "active")


def test_an_erasure_is_recorded_by_the_hash_alone(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    address = "Zoe.Private@Example.org"
    assert run(capsys, "subscribers", "add", address, "--name", "Zoe").code == 0
    r = run(capsys, "subscribers", "erase", address, "--yes")
    assert r.code == 0, r.err
    assert run(capsys, "subscribers", "add", "other@example.org").code == 0
    rows = entries(capsys)
    erased = by_action(rows, "subscriber.erase")
    assert len(erased) == 1
    assert erased[0]["target"] == email_hash(address)
    printed = json.dumps(erased[0]).lower()
    assert "zoe.private" not in printed and "example.org" not in printed
    # Nor does any entry made before: they name the hash now, and keep no name or choices.
    assert [(row["action"], row["target"]) for row in rows] == [
        ("subscriber.add", "other@example.org"),
        ("subscriber.erase", email_hash(address)),
        ("subscriber.add", email_hash(address)),
    ]
    assert (rows[2]["before"], rows[2]["after"], rows[2]["via"]) == (None, None, "cli")
    assert rows[0]["after"]["status"] == "pending"  # somebody else's entries are untouched
    everything = json.dumps(rows).lower() + run(capsys, "audit").out.lower()
    assert "zoe" not in everything


def test_posts_featuring_and_newsletter_archive_from_the_cli(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "posts", "add", "--title", "Big story", "--url", "https://example.com/big")
    assert r.code == 0, r.err
    post = r.out.split()[1]
    assert run(capsys, "posts", "feature", post, "--until", "36h").code == 0
    assert run(capsys, "posts", "unfeature", post).code == 0
    assert run(capsys, "newsletters", "add", "old", "--name", "Old").code == 0
    assert run(capsys, "newsletters", "archive", "old").code == 0
    rows = entries(capsys)
    assert [(row["action"], row["target"]) for row in rows] == [
        ("newsletter.archive", "old"),
        ("newsletter.add", "old"),
        ("post.unfeature", f"post {post}"),
        ("post.feature", f"post {post}"),
        ("post.add", f"post {post}"),
    ]
    unfeatured, featured, added = rows[2:]
    assert added["after"]["title"] == "Big story" and added["after"]["featured"] is None
    assert featured["before"]["featured"] is None
    assert featured["after"]["featured"] is True and featured["after"]["until"]
    assert unfeatured["before"] == featured["after"]
    assert unfeatured["after"] == {"featured": False, "newsletters": [], "until": None}


def test_desk_accounts_are_recorded_without_their_passwords_and_refusals_are_not(
    cli_env: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "violet kettle marching"
    monkeypatch.setattr("sys.stdin", io.StringIO(password))
    add = ("users", "add", "own@example.com", "--role", "owner", "--password-stdin")
    assert run(capsys, *add).code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(password + " too"))
    assert run(capsys, "users", "passwd", "own@example.com", "--password-stdin").code == 0
    assert run(capsys, "users", "role", "own@example.com", "viewer").code != 0  # the last owner
    assert run(capsys, "newsletters", "edit", "nope", "--name", "x").code != 0
    rows = entries(capsys)
    assert [(row["action"], row["target"]) for row in rows] == [
        ("user.password", "own@example.com"),
        ("user.add", "own@example.com"),
    ]
    assert rows[1]["after"] == {"role": "owner"}
    assert password not in json.dumps(rows)
    assert entries(capsys, "--limit", "1") == rows[:1]


def test_imports_feeds_and_announcements_from_the_cli(
    cli_env: Database,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DIGEST_ALLOW_PRIVATE_FEEDS", "true")
    people = tmp_path / "people.csv"
    people.write_text("email,name\nann@example.com,Ann\nbob@example.com,Bob\nnot-an-address,X\n")
    r = run(capsys, "subscribers", "import", str(people), "--status", "active")
    assert r.code == 3  # one row rejected; the others went in, and are recorded
    body = tmp_path / "body.md"
    body.write_text("We moved.\n")
    made = run(capsys, "announce", "create", "--subject", "News", "--body-file", str(body))
    assert made.code == 0, made.err
    ident = int(made.out)
    at = (utcnow() + timedelta(hours=3)).replace(microsecond=0).isoformat()
    assert run(capsys, "announce", "schedule", str(ident), "--at", at).code == 0
    assert run(capsys, "announce", "cancel", str(ident)).code == 0
    server = FeedServer().start()
    try:
        url = server.route("/feed", body=(FEEDS / "rss2_media.xml").read_bytes())
        assert run(capsys, "feeds", "add", url).code == 0
        assert run(capsys, "feeds", "add", url).code == 0  # present already: no change
        assert run(capsys, "posts", "import", url).code == 0
        assert run(capsys, "posts", "import", url).code == 0  # nothing new: no entry
        assert run(capsys, "feeds", "remove", url).code == 0
    finally:
        server.stop()
    rows = entries(capsys)
    target = f"announcement {ident}"
    assert [(row["action"], row["target"]) for row in rows] == [
        ("feed.remove", url),
        ("post.import", url),
        ("feed.add", url),
        ("announcement.cancel", target),
        ("announcement.schedule", target),
        ("announcement.create", target),
        ("subscriber.import", "digest"),
    ]
    assert {row["via"] for row in rows} == {"cli"}
    assert rows[1]["after"] == {"inserted": 3, "updated": 0}
    assert rows[4]["before"]["status"] == "draft" and rows[4]["after"]["send_at"]
    assert rows[5]["after"] == {"subject": "News", "readers": 2}
    assert rows[6]["after"] == {
        "rows": 3,
        "added": 2,
        "updated": 0,
        "unchanged": 0,
        "merged": 0,
        "suppressed": 0,
        "file": "people.csv",
    }


async def test_an_edition_made_through_the_api_is_recorded(
    cli_env: Database, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with cli_env.transaction() as session:
        subscriptions.add(session, "ann@example.com", confirmed=True)
    async with api(cli_env, make_settings) as http:
        dry = await http.post("/api/editions", json={"cadence": "daily", "dry_run": True})
        assert dry.status_code == 200, dry.text
        made = await http.post("/api/editions", json={"cadence": "daily"})
        assert made.status_code == 200 and made.json()["made"], made.text
    rows = entries(capsys)
    assert [(row["action"], row["target"], row["via"]) for row in rows] == [
        ("edition.make", made.json()["key"], "api")
    ]
    answer = made.json()
    assert rows[0]["after"] == {"edition": answer["edition_id"], "recipients": answer["recipients"]}
