"""The desk's Editions section on both stores: each edition with its deliveries by state, its
page with a preview as one subscriber gets it, a test copy that arrives at a real SMTP server
for the signed-in person only (and no more than ten an hour), and the alert form's refusals."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from digest import audit, edition_list, editions, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from digest.models import Delivery, Edition
from digest.posts import store
from tests.support import alerts as alert_support
from tests.support.desk import desk_client
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.support.web import make_app

READERS = ["ana@example.com", "ben@example.com", "cy@example.com"]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    started = start_server(RecordingHandler())
    yield started
    started.stop()


@pytest.fixture
def mailer(db: Database, make_settings, server: SmtpServer) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, smtp_url=server.url)


def _edition(db: Database, settings: Settings) -> int:
    """Three readers, a post, their daily edition made and sent by a worker; its id."""
    with db.transaction() as session:
        for email in READERS:
            subscriptions.add(session, email, confirmed=True)
        store.add_post(session, title="Harbour reopens", url="https://news.example.com/1")
    report = editions.make_edition(
        db, settings, cadence="daily", now=utcnow() + timedelta(minutes=1), due_only=False
    )
    assert report is not None and report.recipients == 3
    assert drain(settings, db).sent == 3
    with db.transaction() as session:
        return int(session.execute(sa.select(sa.func.max(Delivery.edition_id))).scalar_one())


def _deliveries(db: Database) -> int:
    with db.transaction() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(Delivery)).scalar_one())


async def test_an_edition_shows_its_deliveries_by_state_in_the_list_and_on_its_page(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    ident = await asyncio.to_thread(_edition, db, mailer)  # drain runs its own loop
    http, _ = await desk_client(make_app(mailer, db), db, "viewer")
    listing = await http.get("/desk/editions")
    assert listing.status_code == 200
    assert f'href="/desk/editions/{ident}"' in listing.text
    row = listing.text.split(f'href="/desk/editions/{ident}"')[1].split("</tr>")[0]
    assert re.search(r'data-label="Sent" class="num">3<', row), row
    assert re.search(r'data-label="Queued" class="num">0<', row), row
    page = await http.get(f"/desk/editions/{ident}")
    assert page.status_code == 200
    assert 'data-state="sent">3<' in page.text
    assert f'href="/archive/{ident}"' in page.text  # its public web version
    assert (await http.get(f"/archive/{ident}")).status_code == 200


async def test_the_preview_shows_what_one_subscriber_would_get_in_a_sandboxed_frame(
    db: Database, mailer: Settings
) -> None:
    ident = await asyncio.to_thread(_edition, db, mailer)  # drain runs its own loop
    with db.transaction() as session:  # a reader who joined after that edition
        subscriptions.add(session, "dan@example.com", confirmed=True)
    http, _ = await desk_client(make_app(mailer, db), db, "viewer")
    had_it = await http.get(f"/desk/editions/{ident}", params={"address": READERS[0]})
    assert had_it.status_code == 200
    assert "No digest for this reader now: no new posts" in had_it.text  # ana had that story
    page = await http.get(f"/desk/editions/{ident}", params={"address": "dan@example.com"})
    assert page.status_code == 200
    assert "Harbour reopens" in page.text.split("Text version")[1]  # dan has not had it
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    frame = re.search(r'<iframe class="preview" sandbox="" [^>]*src="([^"]+)"', page.text)
    assert frame, page.text
    html = await http.get(frame.group(1).replace("&amp;", "&"))
    assert html.status_code == 200
    assert "Harbour reopens" in html.text
    # his preview, but inert footer links: the desk never shows a reader's signed links
    assert "#preview-unsubscribe" in html.text and "/unsubscribe/" not in html.text
    policy = html.headers["content-security-policy"]
    assert "sandbox" in policy and "script-src" not in policy and "default-src 'none'" in policy
    assert html.headers["x-frame-options"] == "SAMEORIGIN"
    unknown = await http.get(f"/desk/editions/{ident}", params={"address": "nobody@example.com"})
    assert unknown.status_code == 422
    assert 'id="address-error"' in unknown.text and 'value="nobody@example.com"' in unknown.text


async def test_a_test_copy_arrives_for_the_signed_in_editor_only_and_is_limited(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    ident = await asyncio.to_thread(_edition, db, mailer)  # drain runs its own loop
    with db.transaction() as session:
        store.add_post(session, title="Ferry timetable", url="https://news.example.com/3")
    before, seen = _deliveries(db), len(server.handler.received)  # type: ignore[attr-defined]
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    sent = await http.post(f"/desk/editions/{ident}/test", data={"csrf_token": csrf})
    assert sent.status_code == 303, sent.text
    assert "done=test" in sent.headers["location"]
    (copy,) = server.handler.received[seen:]  # type: ignore[attr-defined]
    assert copy.rcpt_tos == ("editor@newsroom.example",)
    assert b"X-Digest-Test: yes" in copy.data and b"Ferry timetable" in copy.data
    assert _deliveries(db) == before  # nothing queued
    with db.transaction() as session:
        (entry,) = audit.recent(session, limit=10, action="edition.test")
        assert entry.actor == "editor@newsroom.example"
    for _ in range(9):
        assert (
            await http.post(f"/desk/editions/{ident}/test", data={"csrf_token": csrf})
        ).status_code == 303
    refused = await http.post(f"/desk/editions/{ident}/test", data={"csrf_token": csrf})
    assert refused.status_code == 429 and "10 test copies this hour" in refused.text
    assert len(server.handler.received) == seen + 10  # type: ignore[attr-defined]


async def test_a_viewer_or_a_form_without_its_token_is_refused(
    db: Database, mailer: Settings, server: SmtpServer
) -> None:
    ident = await asyncio.to_thread(_edition, db, mailer)  # drain runs its own loop
    seen = len(server.handler.received)  # type: ignore[attr-defined]
    app = make_app(mailer, db)
    viewer, vcsrf = await desk_client(app, db, "viewer")
    for path in (f"/desk/editions/{ident}/test", "/desk/editions/alert"):
        assert (await viewer.post(path, data={"csrf_token": vcsrf, "post": "1"})).status_code == 403
    editor, _ = await desk_client(app, db, "editor")
    for path in (f"/desk/editions/{ident}/test", "/desk/editions/alert"):
        assert (await editor.post(path, data={"post": "1"})).status_code == 403
    assert len(server.handler.received) == seen  # type: ignore[attr-defined]


async def test_the_alert_form_shows_refusals_and_raises_an_alert(
    db: Database, mailer: Settings
) -> None:
    http, csrf = await desk_client(make_app(mailer, db), db, "editor")
    missing = await http.post(
        "/desk/editions/alert", data={"csrf_token": csrf, "post": "no-such-guid"}
    )
    assert missing.status_code == 422
    assert 'id="alert-error"' in missing.text and 'value="no-such-guid"' in missing.text
    nul = await http.post("/desk/editions/alert", data={"csrf_token": csrf, "post": "a\x00b"})
    assert nul.status_code == 422 and 'id="alert-error"' in nul.text
    post_id = alert_support.post(db, "Bridge closed after storm")
    nobody = await http.post(
        "/desk/editions/alert", data={"csrf_token": csrf, "post": str(post_id)}
    )
    assert nobody.status_code == 422 and "nobody has opted in" in nobody.text
    alert_support.readers(db, ["dee@example.com", "eve@example.com"])
    raised = await http.post(
        "/desk/editions/alert", data={"csrf_token": csrf, "post": str(post_id)}
    )
    assert raised.status_code == 303, raised.text
    assert "alert was raised" in (await http.get(raised.headers["location"])).text
    with db.transaction() as session:
        (entry,) = audit.recent(session, limit=10, action="alert.raise")
        assert entry.after is not None
        # Queued, or held by quiet hours at this time of day: both readers are counted.
        assert entry.after["queued"] + entry.after["held_quiet"] == 2
    again = await http.post("/desk/editions/alert", data={"csrf_token": csrf, "post": str(post_id)})
    assert again.status_code == 422 and 'id="alert-error"' in again.text


def test_pages_of_editions_follow_each_other_newest_first_without_repeats(db: Database) -> None:
    # Two editions share a moment: the id breaks the tie, so none is shown twice or skipped.
    base = utcnow().replace(microsecond=0)
    with db.transaction() as session:
        for n, (hours, newsletter_id) in enumerate([(0, 1), (1, 1), (1, 1), (2, 2), (3, 1)]):
            session.add(
                Edition(
                    newsletter_id=newsletter_id,
                    key=f"{newsletter_id}/daily:test-{n}",
                    cadence="daily",
                    edition_at=base - timedelta(hours=hours),
                    subject=f"Edition {n}",
                )
            )
    seen: list[str] = []
    after = None
    with db.transaction() as session:
        while True:
            found = edition_list.page(session, after=after, limit=2)
            seen += [e.subject for e in found.editions]
            if found.next_after is None:
                break
            after = found.next_after
        assert seen == ["Edition 0", "Edition 2", "Edition 1", "Edition 3", "Edition 4"]
        mine = edition_list.page(session, newsletter_id=2)
        assert [e.subject for e in mine.editions] == ["Edition 3"] and mine.next_after is None
