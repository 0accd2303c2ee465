"""The desk's Subscribers section over HTTP, on both stores: search, a person's page with their
mail's SMTP replies, the editor's actions (audited), import with a preview, export."""

from __future__ import annotations

import csv
import io
import re
from contextlib import aclosing
from datetime import timedelta

import httpx
from sqlmodel import select

from digest import audit, subscribers, subscriptions
from digest.addresses import email_hash
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.models import AuditEntry, Delivery
from digest.newsletters import FIRST
from digest.subscriber_fields import Consent
from digest.suppressions import is_suppressed
from tests.support.desk import desk_client
from tests.support.forms import form_fields
from tests.support.web import make_app

REPLY = "550 5.1.1 <ann@example.org>: Recipient address rejected: mailbox unknown"
ROW = re.compile(r'<a href="/desk/subscribers/(\d+)">([^<]+)</a>')


def _world(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        ids = {}
        for email, name in [
            ("ann@example.org", "Ann Archer"),
            ("annabel@example.org", "Bel Canto"),
            ("bob@example.org", "Annie Bob"),
            ("carl@example.net", "Carl"),
        ]:
            reader = subscriptions.add(
                session,
                email,
                name=name,
                confirmed=True,
                topics="Politics",
                timezone="Europe/Paris",
                consent=Consent(
                    at=utcnow(), ip="198.51.100.4", user_agent="Firefox/140", source="form"
                ),
            )
            ids[email] = reader.id
        session.add(
            Delivery(
                kind="digest",
                subscriber_id=ids["ann@example.org"],
                to_email="ann@example.org",
                status="bounced",
                attempts=1,
                last_reply=REPLY,
                message_id="<d1@example.org>",
                created_at=utcnow() - timedelta(hours=1),
            )
        )
        session.add(
            Delivery(
                kind="welcome",
                subscriber_id=ids["ann@example.org"],
                to_email="ann@example.org",
                status="sent",
                attempts=2,
                last_reply="250 2.0.0 Ok: queued as 4XyZ",
                message_id="<w1@example.org>",
            )
        )
    return ids


def _found(html: str) -> list[str]:
    return [email for _, email in ROW.findall(html)]


def _entries(db: Database, action: str) -> list[AuditEntry]:
    with db.transaction() as session:
        found = list(audit.recent(session, action=action))
        session.expunge_all()
        return found


async def test_search_by_prefix_of_address_or_name(settings: Settings, db: Database) -> None:
    _world(db)
    http, _ = await desk_client(make_app(settings, db), db, "viewer")
    async with aclosing(http):
        page = await http.get("/desk/subscribers", params={"q": "ann"})
        assert page.status_code == 200
        # "ann" starts ann@, annabel@ and the name "Annie Bob"; not "Bel Canto" or "Carl".
        assert _found(page.text) == ["ann@example.org", "annabel@example.org", "bob@example.org"]
        page = await http.get("/desk/subscribers", params={"q": "CARL"})
        assert _found(page.text) == ["carl@example.net"]
        # A substring is not a prefix; a wildcard typed is a character.
        assert _found((await http.get("/desk/subscribers?q=nabel")).text) == []
        assert _found((await http.get("/desk/subscribers?q=%25")).text) == []
        assert _found((await http.get("/desk/subscribers?q=a_n")).text) == []
        page = await http.get("/desk/subscribers", params={"zone": "Mars/Base"})
        assert page.status_code == 422
        assert 'id="zone-error"' in page.text and 'value="Mars/Base"' in page.text
        page = await http.get("/desk/subscribers", params={"status": "gone", "q": "x"})
        assert page.status_code == 422 and 'id="status-error"' in page.text
        # A viewer is shown no action buttons.
        assert "Import a CSV" not in page.text


async def test_list_pages_by_keyset(settings: Settings, db: Database) -> None:
    with db.transaction() as session:
        for i in range(57):
            subscriptions.add(session, f"p{i:03d}@example.org", confirmed=True)
    http, _ = await desk_client(make_app(settings, db), db, "viewer")
    async with aclosing(http):
        seen: list[str] = []
        url: str | None = "/desk/subscribers?status=active"
        while url:
            page = await http.get(url)
            seen += _found(page.text)
            more = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = more.group(1).replace("&amp;", "&") if more else None
        assert seen == [f"p{i:03d}@example.org" for i in range(57)]
        assert "offset" not in page.text.lower()
        back = re.search(r'rel="prev" href="([^"]+)"', page.text)
        assert back is not None
        previous = await http.get(back.group(1).replace("&amp;", "&"))
        assert _found(previous.text) == seen[:50]


async def test_person_page_shows_consent_mail_and_reply(settings: Settings, db: Database) -> None:
    ids = _world(db)
    http, _ = await desk_client(make_app(settings, db), db, "viewer")
    async with aclosing(http):
        page = await http.get(f"/desk/subscribers/{ids['ann@example.org']}")
        assert page.status_code == 200
        text = page.text
        assert "ann@example.org" in text and "Ann Archer" in text
        assert "198.51.100.4" in text and "Firefox/140" in text and "Politics" in text
        assert "Recipient address rejected: mailbox unknown" in text
        # Newest first: the welcome mail of now before the digest that bounced an hour ago.
        history = text[text.index("Mail, newest first") :]
        assert history.index("queued as 4XyZ") < history.index("mailbox unknown")
        assert "Europe/Paris" in text
        # No action for a viewer.
        assert "/erase" not in text and "/unsubscribe" not in text
        for nobody in ("999999", "99999999999999999999", "abc", "1/x"):
            assert (await http.get(f"/desk/subscribers/{nobody}")).status_code == 404, nobody


async def test_editor_unsubscribes_and_changes_cadence(settings: Settings, db: Database) -> None:
    ids = _world(db)
    pid = ids["bob@example.org"]
    http, csrf = await desk_client(make_app(settings, db), db, "editor")
    async with aclosing(http):
        page = await http.get(f"/desk/subscribers/{pid}")
        fields = form_fields(page.text, f"/desk/subscribers/{pid}/preferences")
        fields = [(k, v) for k, v in fields if k not in ("cadence", "topics")]
        fields += [("cadence", "weekly"), ("topics", "Sport, Culture")]
        done = await http.post(f"/desk/subscribers/{pid}/preferences", data=dict(fields))
        assert done.status_code == 303
        bad = dict(fields) | {"cadence": "hourly", "topics": "Typed here"}
        again = await http.post(f"/desk/subscribers/{pid}/preferences", data=bad)
        assert again.status_code == 422
        assert f'id="cadence-{FIRST}-error"' in again.text and 'value="Typed here"' in again.text
        gone = await http.post(
            f"/desk/subscribers/{pid}/unsubscribe",
            data={"csrf_token": csrf, "newsletter_id": str(FIRST)},
        )
        assert gone.status_code == 303
    with db.transaction() as session:
        reader = subscribers.reader(session, "bob@example.org")
        assert (reader.status, reader.cadence, reader.topics) == (
            "unsubscribed",
            "weekly",
            ["Sport", "Culture"],
        )
    [prefs] = _entries(db, "subscriber.preferences")
    assert prefs.before["cadence"] == "daily" and prefs.after["cadence"] == "weekly"
    assert prefs.actor == "editor@newsroom.example" and prefs.target == "bob@example.org"
    [left] = _entries(db, "subscriber.unsubscribe")
    assert (left.before["status"], left.after["status"]) == ("active", "unsubscribed")


async def test_erase_needs_the_address_typed(settings: Settings, db: Database) -> None:
    ids = _world(db)
    pid = ids["ann@example.org"]
    http, csrf = await desk_client(make_app(settings, db), db, "editor")
    async with aclosing(http):
        data = {"csrf_token": csrf, "newsletter_id": "1", "cadence": "weekly", "topics": ""}
        changed = await http.post(f"/desk/subscribers/{pid}/preferences", data=data)
        assert changed.status_code == 303
        wrong = await http.post(
            f"/desk/subscribers/{pid}/erase",
            data={"csrf_token": csrf, "confirm_email": "anne@example.org"},
        )
        assert wrong.status_code == 422
        assert 'id="confirm_email-error"' in wrong.text
        assert 'value="anne@example.org"' in wrong.text
        with db.transaction() as session:
            assert subscribers.find(session, "ann@example.org") is not None
            assert session.exec(select(Delivery)).all()
        assert _entries(db, "subscriber.erase") == []
        done = await http.post(
            f"/desk/subscribers/{pid}/erase",
            data={"csrf_token": csrf, "confirm_email": " Ann@Example.org "},
        )
        assert done.status_code == 303
        assert (await http.get(f"/desk/subscribers/{pid}")).status_code == 404
    with db.transaction() as session:
        assert subscribers.find(session, "ann@example.org") is None
        assert is_suppressed(session, "ann@example.org")
        assert all(d.to_email != "ann@example.org" for d in session.exec(select(Delivery)))
    [entry] = _entries(db, "subscriber.erase")
    assert entry.target == email_hash("ann@example.org")
    # Nothing in the log names her any more: her earlier change is under the hash too.
    [earlier] = _entries(db, "subscriber.preferences")
    assert earlier.target == entry.target and earlier.before is None
    with db.transaction() as session:
        written = str([audit.as_dict(e) for e in audit.recent(session)])
    assert "ann@" not in written.lower() and "Ann Archer" not in written


async def test_viewer_and_missing_token_get_403(settings: Settings, db: Database) -> None:
    ids = _world(db)
    pid = ids["carl@example.net"]
    app = make_app(settings, db)
    posts = [
        (f"/desk/subscribers/{pid}/unsubscribe", {"newsletter_id": str(FIRST)}),
        (f"/desk/subscribers/{pid}/preferences", {"newsletter_id": "1", "cadence": "weekly"}),
        (f"/desk/subscribers/{pid}/erase", {"confirm_email": "carl@example.net"}),
        ("/desk/subscribers/import", {"step": "preview"}),
    ]
    viewer, viewer_csrf = await desk_client(app, db, "viewer")
    editor, _ = await desk_client(app, db, "editor")
    async with aclosing(viewer), aclosing(editor):
        for path, data in posts:
            refused = await viewer.post(path, data=data | {"csrf_token": viewer_csrf})
            assert refused.status_code == 403, path
            assert (await editor.post(path, data=data)).status_code == 403, path
        export = {"csrf_token": viewer_csrf}
        assert (await viewer.post("/desk/subscribers/export.csv", data=export)).status_code == 403
        assert (await viewer.get("/desk/subscribers/import")).status_code == 403
    with db.transaction() as session:
        assert subscribers.reader(session, "carl@example.net").status == "active"


CSV_TEXT = (
    "Email Address,First Name,Last Name,Fav\n"
    "new1@example.org,Nia,One,x\nnew2@example.org,Ned,Two,y\nnot-an-address,No,Body,z\n"
)


async def test_import_preview_then_import(settings: Settings, db: Database) -> None:
    http, csrf = await desk_client(make_app(settings, db), db, "editor")
    async with aclosing(http):
        upload = {"file": ("list.csv", CSV_TEXT.encode(), "text/csv")}
        first = await http.post("/desk/subscribers/import", data={"csrf_token": csrf}, files=upload)
        # "Fav" is none of digest's columns: the error beside the file, and the columns to
        # name it with (as --map does), the file carried by the form.
        assert first.status_code == 422 and 'id="file-error"' in first.text
        fields = _choose(form_fields(first.text, "/desk/subscribers/import"), "Fav", "ignore")
        assert any(k == "csv" and v for k, v in fields)
        preview = await _post_form(http, fields, status="pending", step="preview")
        assert preview.status_code == 200, preview.text
        assert "Mailchimp" in preview.text or "mailchimp" in preview.text
        assert "new1@example.org" in preview.text and "Nia One" in preview.text
        assert "rejected" in preview.text
        with db.transaction() as session:
            assert subscribers.find(session, "new1@example.org") is None
        fields = form_fields(preview.text, "/desk/subscribers/import")
        done = await _post_form(http, fields, step="import")
        assert done.status_code == 303
        report = await http.get(done.headers["location"])
        assert "2 added" in report.text and "1 rejected" in report.text
    with db.transaction() as session:
        assert subscribers.reader(session, "new2@example.org").status == "pending"
        assert subscribers.get(session, "new2@example.org").name == "Ned Two"
        assert not session.exec(select(Delivery)).all()  # no welcome mail unasked
    [entry] = _entries(db, "subscriber.import")
    assert entry.after is not None and entry.after["added"] == 2


def _choose(fields: list[tuple[str, str]], header: str, field: str) -> list[tuple[str, str]]:
    """The preview's form with ``header``'s column read as ``field``."""
    headers = [v for k, v in fields if k == "header"]
    choices = [v for k, v in fields if k == "field"]
    choices[headers.index(header)] = field
    rest = [(k, v) for k, v in fields if k not in ("field",)]
    return rest + [("field", c) for c in choices]


async def _post_form(
    http: httpx.AsyncClient, fields: list[tuple[str, str]], **put: str
) -> httpx.Response:
    """Post the form as a browser does: multipart, the file input empty."""
    data: dict[str, list[str]] = {}
    for key, value in fields:
        if key not in put and key != "file":
            data.setdefault(key, []).append(value)
    for key, value in put.items():
        data[key] = [value]
    empty = {"file": ("", b"", "application/octet-stream")}
    return await http.post("/desk/subscribers/import", data=data, files=empty)


async def test_export_downloads_the_csv(settings: Settings, db: Database) -> None:
    _world(db)
    http, _ = await desk_client(make_app(settings, db), db, "editor")
    async with aclosing(http):
        # Not a link any site could make an editor's browser follow: GET is refused, and a
        # POST without the session's CSRF token too, neither audited.
        assert (await http.get("/desk/subscribers/export.csv")).status_code in (404, 405)
        assert (await http.post("/desk/subscribers/export.csv")).status_code == 403
        assert not _entries(db, "subscriber.export")
        page = await http.get("/desk/subscribers")
        fields = form_fields(page.text, "/desk/subscribers/export.csv")
        assert any(k == "csrf_token" and v for k, v in fields)
        answer = await http.post("/desk/subscribers/export.csv", data=dict(fields))
        assert answer.status_code == 200
        assert answer.headers["content-disposition"].startswith("attachment; filename=")
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["email"] for r in rows] == [
            "ann@example.org",
            "annabel@example.org",
            "bob@example.org",
            "carl@example.net",
        ]
        assert rows[0]["consent_ip"] == "198.51.100.4"
    assert len(_entries(db, "subscriber.export")) == 1


async def test_import_queues_welcome_mail_only_when_asked(settings: Settings, db: Database) -> None:
    http, csrf = await desk_client(make_app(settings, db), db, "editor")
    text = b"email,name\nwel@example.org,Wel Come\n"
    async with aclosing(http):
        answer = await http.post(
            "/desk/subscribers/import",
            data={"csrf_token": csrf, "status": "active", "welcome": "1", "step": "import"},
            files={"file": ("w.csv", text, "text/csv")},
        )
        assert answer.status_code == 303, answer.text
    with db.transaction() as session:
        mail = session.exec(select(Delivery)).all()
        assert [(d.kind, d.to_email) for d in mail] == [("welcome", "wel@example.org")]
    [entry] = _entries(db, "subscriber.import")
    assert entry.after is not None and entry.after["welcome_mails"] == 1
