"""The desk's Announcements section on both stores: compose, edit, preview as a reader, test
copy to yourself at a real SMTP server, schedule, cancel, send now (deliveries queued under
the announcement's once-key); each change audited with its status before and after; every
form re-shown with what was typed and the error beside the field."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from digest import audit, newsletters, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.announcement_outbox import once_key
from digest.models import Delivery
from tests.support.desk import desk_client
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.support.web import make_app

READERS = ["ana@example.com", "ben@example.com"]
BODY = "# Our new podcast\n\nListen to [episode one](https://pod.example.com/1).\n"


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    started = start_server(RecordingHandler())
    yield started
    started.stop()


@pytest.fixture
def mailer(db: Database, make_settings, server: SmtpServer) -> Settings:  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        for email in READERS:
            subscriptions.add(session, email, confirmed=True)
    return make_settings(database_url=db.url, smtp_url=server.url)


async def _compose(http: httpx.AsyncClient, csrf: str, **fields: str) -> httpx.Response:
    data = {"csrf_token": csrf, "newsletter": "digest", "subject": "Podcast", "body": BODY}
    return await http.post("/desk/announcements", data={**data, **fields})


def _ident(answer: httpx.Response) -> int:
    assert answer.status_code == 303, answer.text
    found = re.match(r"/desk/announcements/(\d+)\?done=", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def _statuses(db: Database, action: str) -> list[tuple[str | None, str | None]]:
    with db.transaction() as session:
        return [
            ((e.before or {}).get("status"), (e.after or {}).get("status"))
            for e in audit.recent(session, limit=50, action=action)
        ]


async def test_compose_preview_schedule_cancel_each_audited(db: Database, mailer: Settings) -> None:
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    ident = _ident(await _compose(http, csrf))
    page = await http.get(f"/desk/announcements/{ident}", params={"address": READERS[0]})
    assert page.status_code == 200 and 'id="status">draft<' in page.text
    assert "Listen to episode one (https://pod.example.com/1)" in page.text  # the text part
    frame = re.search(r'<iframe class="preview" sandbox="" [^>]*src="([^"]+)"', page.text)
    assert frame, page.text
    html = await http.get(frame.group(1).replace("&amp;", "&"))
    assert html.status_code == 200 and 'href="https://pod.example.com/1"' in html.text
    # ana's preview, with inert footer links: the desk never shows her signed links
    assert "#preview-unsubscribe" in html.text and "/unsubscribe/" not in html.text
    assert "sandbox" in html.headers["content-security-policy"]
    later = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    scheduled = await http.post(
        f"/desk/announcements/{ident}/schedule",
        data={"csrf_token": csrf, "when": "at", "at": later},
    )
    assert scheduled.status_code == 303
    page = await http.get(f"/desk/announcements/{ident}")
    assert 'id="status">scheduled<' in page.text and later.replace("T", " ") in page.text
    cancelled = await http.post(f"/desk/announcements/{ident}/cancel", data={"csrf_token": csrf})
    assert cancelled.status_code == 303
    assert 'id="status">cancelled<' in (await http.get(f"/desk/announcements/{ident}")).text
    assert _statuses(db, "announcement.create") == [(None, "draft")]
    assert _statuses(db, "announcement.schedule") == [("draft", "scheduled")]
    assert _statuses(db, "announcement.cancel") == [("scheduled", "cancelled")]
    again = await http.post(f"/desk/announcements/{ident}/cancel", data={"csrf_token": csrf})
    assert again.status_code == 409 and 'id="cancel-error"' in again.text


async def test_edit_a_draft_then_send_now_queues_one_delivery_per_reader(
    db: Database, mailer: Settings
) -> None:
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    ident = _ident(await _compose(http, csrf))
    form = await http.get(f"/desk/announcements/{ident}/edit")
    assert form.status_code == 200 and 'value="Podcast"' in form.text
    edited = await http.post(
        f"/desk/announcements/{ident}/edit",
        data={"csrf_token": csrf, "newsletter": "digest", "subject": "Podcast, episode one",
              "body": BODY},
    )  # fmt: skip
    assert _ident(edited) == ident
    sent = await http.post(f"/desk/announcements/{ident}/send", data={"csrf_token": csrf})
    assert sent.status_code == 303
    with db.transaction() as session:
        rows = session.execute(
            sa.select(Delivery.to_email, Delivery.status).where(
                Delivery.period_key == once_key(1, ident)
            )
        ).all()
    assert sorted(r.to_email for r in rows) == READERS
    assert {r.status for r in rows} == {"queued"}  # the worker sends them
    assert _statuses(db, "announcement.send") == [("draft", "queued")]
    assert _statuses(db, "announcement.edit") == [("draft", "draft")]
    late = await http.post(
        f"/desk/announcements/{ident}/edit",
        data={"csrf_token": csrf, "newsletter": "digest", "subject": "Too late", "body": BODY},
    )
    assert late.status_code == 422 and "only a draft can be edited" in late.text
    assert 'value="Too late"' in late.text


async def test_a_test_copy_arrives_for_the_signed_in_editor_only(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    ident = _ident(await _compose(http, csrf))
    answer = await http.post(f"/desk/announcements/{ident}/test", data={"csrf_token": csrf})
    assert answer.status_code == 303 and "done=test" in answer.headers["location"]
    (copy,) = server.handler.received  # type: ignore[attr-defined]
    assert copy.rcpt_tos == ("editor@newsroom.example",)
    assert b"X-Digest-Test: yes" in copy.data and b"Podcast" in copy.data
    with db.transaction() as session:
        assert not session.execute(sa.select(Delivery.id)).first()  # nothing queued
    assert len(_statuses(db, "announcement.test")) == 1


async def test_bad_input_re_shows_the_form_with_the_error_beside_the_field(
    db: Database, mailer: Settings
) -> None:
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    empty = await _compose(http, csrf, subject="   ")
    assert empty.status_code == 422
    assert 'id="subject-error"' in empty.text and "# Our new podcast" in empty.text
    nul = await _compose(http, csrf, body="Hello\x00world", newsletter="digest\x00")
    assert nul.status_code == 422 and 'id="body-error"' in nul.text
    ident = _ident(await _compose(http, csrf))
    for fields, where in (
        ({"when": "at", "at": "2026-13-45T99:00"}, "at"),
        ({"when": "at", "at": "2020-01-01T09:00"}, "at"),
        ({"when": "local", "hour": "25", "on": "2030-01-01"}, "hour"),
        ({"when": "local", "hour": "9", "on": "tomorrow"}, "on"),
        ({"when": "sometime"}, "when"),
    ):
        answer = await http.post(
            f"/desk/announcements/{ident}/schedule", data={"csrf_token": csrf, **fields}
        )
        assert answer.status_code == 422, (fields, answer.status_code)
        assert f'id="{where}-error"' in answer.text, fields
        for value in fields.values():
            if value not in ("at", "local", "sometime"):
                assert f'value="{value}"' in answer.text, value
    form = await http.get("/desk/announcements/new")
    assert form.status_code == 200
    with db.transaction() as session:  # archived while the form was open
        newsletters.archive(session, newsletters.get(session, "digest"))
    archived = await _compose(http, csrf, subject="After the archive")
    assert archived.status_code == 422
    assert 'id="newsletter-error"' in archived.text and 'value="After the archive"' in archived.text


async def test_a_viewer_reads_but_every_change_is_refused_and_a_form_needs_its_token(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    app = make_app(mailer, db)
    editor, csrf = await desk_client(app, db, "editor")
    ident = _ident(await _compose(editor, csrf))
    viewer, vcsrf = await desk_client(app, db, "viewer")
    assert (await viewer.get("/desk/announcements")).status_code == 200
    assert (await viewer.get(f"/desk/announcements/{ident}")).status_code == 200
    assert (await viewer.get("/desk/announcements/new")).status_code == 403
    posts = [
        "/desk/announcements",
        *(
            f"/desk/announcements/{ident}/{a}"
            for a in ("edit", "test", "schedule", "send", "cancel")
        ),
    ]
    for path in posts:
        assert (await viewer.post(path, data={"csrf_token": vcsrf})).status_code == 403, path
        assert (await editor.post(path, data={"subject": "x"})).status_code == 403, path
    assert server.handler.received == []  # type: ignore[attr-defined]
    page = await editor.get(f"/desk/announcements/{ident}")
    assert 'id="status">draft<' in page.text


async def test_hostile_input_gets_a_sentence_never_a_5xx_on_either_store(
    db: Database, mailer: Settings
) -> None:
    # PostgreSQL refuses a NUL byte in text and a number past 32 bits: each must be a 4xx.
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    ident = _ident(await _compose(http, csrf))
    for path in (
        "/desk/editions?newsletter=%00",
        f"/desk/announcements/{ident}?address=a%00@example.com",
        f"/desk/announcements/{ident}/preview.html?address=%00",
        f"/desk/announcements/{ident}/preview.html?address=nobody@example.com",
    ):
        answer = await http.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    for fields in (
        {"post": "x\x00"},
        {"post": "1", "newsletter": "x\x00"},
        {"post": "99999999999999999999"},
        {"post": "https://x.example/\x00"},
    ):
        answer = await http.post("/desk/editions/alert", data={"csrf_token": csrf, **fields})
        assert answer.status_code == 422 and 'id="alert-error"' in answer.text, fields
    topics = await http.post(
        f"/desk/announcements/{ident}/edit",
        data={"csrf_token": csrf, "newsletter": "digest", "subject": "S", "body": "B",
              "topics": "a\x00b"},
    )  # fmt: skip
    assert topics.status_code == 422 and 'id="topics-error"' in topics.text
