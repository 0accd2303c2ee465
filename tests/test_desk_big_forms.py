"""The desk's large forms on both stores: a 1 MB list previews and imports (the file kept on the
server between the steps, for the session that uploaded it only, gone after the import), a
40 KB announcement saves, and a body over a form's cap gets the desk's own 413 page."""

from __future__ import annotations

import re
from contextlib import aclosing
from pathlib import Path

from digest import announcement_store, subscribers, subscriptions
from digest.config import Settings
from digest.db import Database
from tests.support.desk import desk_client
from tests.support.forms import form_fields
from tests.support.web import make_app
from tests.test_desk_subscribers import _post_form


def _big_csv(size: int) -> bytes:
    lines = ["email,name"]
    while sum(len(line) + 1 for line in lines) < size:
        n = len(lines)
        lines.append(f"reader{n:06d}@example.org,Reader Number {n} of a rather long list")
    return ("\n".join(lines) + "\n").encode()


async def test_a_one_megabyte_list_previews_then_imports(settings: Settings, db: Database) -> None:
    raw = _big_csv(1024 * 1024)
    rows = raw.count(b"\n") - 1
    app = make_app(settings, db)
    http, csrf = await desk_client(app, db, "editor")
    async with aclosing(http):
        first = await http.post(
            "/desk/subscribers/import",
            data={"csrf_token": csrf, "status": "pending"},
            files={"file": ("list.csv", raw, "text/csv")},
        )
        assert first.status_code == 200, first.text[:500]
        assert "reader000001@example.org" in first.text
        fields = form_fields(first.text, "/desk/subscribers/import")
        kept = [v for k, v in fields if k == "csv"]
        assert kept and len(kept[0]) < 100  # an id, not the file
        # Another desk session cannot import the file by its id.
        other, other_csrf = await desk_client(app, db, "editor", email="other@newsroom.example")
        async with aclosing(other):
            theirs = [(k, other_csrf if k == "csrf_token" else v) for k, v in fields]
            refused = await _post_form(other, theirs, step="import")
            assert refused.status_code == 422 and "choose it again" in refused.text
        done = await _post_form(http, fields, step="import")
        assert done.status_code == 303, done.text[:500]
        report = await http.get(done.headers["location"])
        assert f"{rows} added" in report.text
        again = await _post_form(http, fields, step="import")  # the kept file went with it
        assert again.status_code == 422 and "choose it again" in again.text
    assert not list((Path(settings.var_dir) / "desk-imports").glob("*.csv"))
    with db.transaction() as session:
        last = f"reader{rows:06d}@example.org"
        assert subscribers.reader(session, last).status == "pending"


async def test_a_forty_kilobyte_announcement_saves(settings: Settings, db: Database) -> None:
    body = "# A long letter\n\n" + "\n\n".join(
        f"Paragraph {n}: the harbour, the ferry and the market, told at length." for n in range(600)
    )
    assert len(body.encode()) > 40 * 1024
    with db.transaction() as session:  # an audience for it
        subscriptions.add(session, "ana@example.com", confirmed=True)
    http, csrf = await desk_client(make_app(settings, db), db, "editor")
    async with aclosing(http):
        made = await http.post(
            "/desk/announcements",
            data={"csrf_token": csrf, "newsletter": "digest", "subject": "Long", "body": body},
        )
        assert made.status_code == 303, re.findall(r"class=\"(?:field-)?error[^<]*<", made.text)
        ident = int(made.headers["location"].split("/")[3].split("?")[0])
        too_long = await http.post(
            "/desk/announcements",
            data={"csrf_token": csrf, "newsletter": "digest", "subject": "Huge", "body": body * 8},
        )
        assert too_long.status_code == 413
        assert 'href="/desk/' in too_long.text  # the desk's page, its navigation
        assert "still in the form" in too_long.text
        assert "default-src" in too_long.headers["content-security-policy"]
    with db.transaction() as session:
        assert announcement_store.get(session, ident).body_markdown == body
