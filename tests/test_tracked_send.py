"""Tracked links through the whole send path, on both stores: an edition, an alert and an
announcement made by their own code, sent by the worker to a real SMTP server (aiosmtpd), and
each message parsed back with the email package.

What a reader would notice: every post link goes through ``/r/`` and decodes (QP soft breaks
and all) to the post's URL with the newsletter's UTM parameters; each copy carries its own
tag (aggregate) or its reader (per-reader); with tracking off, or for a reader who asked not
to be counted, the links go straight to the site.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from digest import alerts, announcements, editions, newsletters, subscriptions
from digest.announcement_rules import audience
from digest.clock import utcnow
from digest.compose.mail_links import with_tracking
from digest.compose.tracked_links import hrefs
from digest.config import Settings
from digest.db import Database
from digest.delivery import outbox
from digest.delivery.running import drain
from digest.mail.content import MailContent
from digest.posts import store
from digest.tracking import MailKind, MailRef, TrackedLink, read_token
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server

# Long enough to be cut by quoted-printable's 76 columns, with a query, an "&" that the HTML
# part escapes, and a fragment that must stay at the end.
POST = (
    "https://news.example.com/2026/12/02/" + "council-votes-on-the-new-bridge-" * 3 + "x?id=7&a=b#c"
)
UTM = "utm_medium=email&utm_campaign="
_URL = re.compile(r"https?://[^\s()<>]+")  # the test's URLs have no brackets


@pytest.fixture
def server() -> SmtpServer:
    started = start_server(RecordingHandler())
    yield started  # type: ignore[misc]
    started.stop()


def mailer(make_settings: Any, db: Database, server: SmtpServer, **extra: Any) -> Settings:
    return make_settings(
        database_url=db.url, smtp_url=server.url, base_url="https://digest.example.com", **extra
    )


def readers(db: Database, *emails: str, opted_out: tuple[str, ...] = ()) -> dict[str, int]:
    """Active readers of newsletter 1 (those in ``opted_out`` ticked "don't count my clicks",
    as the preference centre stores it); their ids by address."""
    ids = {}
    with db.transaction() as session:
        for email in emails:
            reader = subscriptions.add(session, email, confirmed=True)
            if email in opted_out:
                subscriptions.update_preferences(session, reader, tracking_opt_out=True)
            ids[email] = reader.id
    return ids


def edition(db: Database, settings: Settings) -> int:
    with db.transaction() as session:
        store.add_post(session, title="Council votes on the bridge", url=POST)
    report = editions.make_edition(
        db, settings, cadence="daily", now=utcnow() + timedelta(minutes=1), due_only=False
    )
    assert report is not None and report.edition_id is not None
    return report.edition_id


def messages(server: SmtpServer) -> dict[str, EmailMessage]:
    found: dict[str, EmailMessage] = {}
    for received in server.handler.received:
        (to,) = received.rcpt_tos
        found[to] = BytesParser(policy=policy.default).parsebytes(received.data)  # type: ignore[assignment]
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def tracked(settings: Settings, url: str) -> TrackedLink:
    prefix = settings.base_url + "/r/"
    assert url.startswith(prefix), url
    return read_token(settings.secret, url[len(prefix) :])


def links_out(settings: Settings, message: EmailMessage) -> tuple[list[str], list[str]]:
    """The links of both parts that leave digest (not its own pages, not the footer's)."""
    text, html = parts(message)
    own = settings.base_url + "/"

    def outside(urls: list[str]) -> list[str]:
        return [
            u
            for u in urls
            if u.startswith("http") and (u.startswith(own + "r/") or not u.startswith(own))
        ]

    return outside(_URL.findall(text)), outside(hrefs(html))


def with_utm(campaign: str, source: str = "") -> str:
    rest, _, fragment = POST.partition("#")
    return f"{rest}&utm_source={source or SLUG}&{UTM}{campaign}#{fragment}"


SLUG = "digest"  # newsletter 1's, as the migration makes it (checked below)


@pytest.fixture(autouse=True)
def _first_slug(db: Database) -> None:
    with db.transaction() as session:
        assert newsletters.by_id(session, newsletters.FIRST).slug == SLUG


def test_aggregate_gives_each_copy_its_own_tag_and_no_reader(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = mailer(make_settings, db, server)
    readers(db, "ann@example.org", "bob@example.org")
    edition_id = edition(db, settings)
    drain(settings, db)
    got = messages(server)
    assert set(got) == {"ann@example.org", "bob@example.org"}
    tags = set()
    for message in got.values():
        text_links, html_links = links_out(settings, message)
        assert text_links and html_links
        # The text part prints the exact URLs the HTML part links to, decoded whole.
        assert set(text_links) == set(html_links)
        seen = {tracked(settings, url) for url in html_links}
        assert {(t.mail, t.url, t.reader, t.counted) for t in seen} == {
            (
                MailRef(MailKind.EDITION, edition_id),
                with_utm(f"daily-{utcnow():%Y-%m-%d}"),
                None,
                True,
            )
        }
        (copy,) = {t.copy for t in seen}
        assert copy and len(copy) == 16
        tags.add(copy)
    assert len(tags) == 2


def test_per_reader_copies_carry_the_readers_signed_part(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = mailer(make_settings, db, server, tracking="per-reader")
    ids = readers(
        db, "ann@example.org", "bob@example.org", "cy@example.org", opted_out=("cy@example.org",)
    )
    edition(db, settings)
    drain(settings, db)
    got = messages(server)
    for email in ("ann@example.org", "bob@example.org"):
        _, html_links = links_out(settings, got[email])
        assert {tracked(settings, u).reader for u in html_links} == {ids[email]}
    # Whoever asked not to be counted is not, in this mode either: plain links.
    _, html_links = links_out(settings, got["cy@example.org"])
    assert set(html_links) == {with_utm(f"daily-{utcnow():%Y-%m-%d}")}


def test_off_and_opted_out_readers_get_the_post_with_utm_and_no_redirect(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = mailer(make_settings, db, server)
    readers(db, "ann@example.org", "bob@example.org", opted_out=("bob@example.org",))
    edition(db, settings)
    drain(settings, db)
    got = messages(server)
    campaign = f"daily-{utcnow():%Y-%m-%d}"
    text_links, html_links = links_out(settings, got["bob@example.org"])
    assert set(text_links) == set(html_links) == {with_utm(campaign)}
    _, ann_links = links_out(settings, got["ann@example.org"])
    assert all("/r/" in u for u in ann_links)
    # The opt-out is the same in every mode; with tracking off nobody's links are tracked.
    server.handler.received.clear()
    off = mailer(make_settings, db, server, tracking="off")
    readers(db, "cy@example.org")
    with db.transaction() as session:
        store.add_post(session, title="Another", url=POST.replace("x?", "y?"))
    editions.make_edition(
        db, off, cadence="daily", now=utcnow() + timedelta(hours=1), due_only=False
    )
    drain(off, db)
    cy = messages(server)["cy@example.org"]
    text_links, html_links = links_out(off, cy)
    assert set(text_links) == set(html_links)
    assert not any("/r/" in u for u in html_links) and with_utm(campaign) in html_links
    assert "/o/" not in parts(cy)[1]


def test_a_newsletter_without_utm_links_to_the_post_as_it_is(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = mailer(make_settings, db, server, tracking="off")
    with db.transaction() as session:
        newsletters.by_id(session, newsletters.FIRST).utm = False
    readers(db, "ann@example.org")
    edition(db, settings)
    drain(settings, db)
    text_links, html_links = links_out(settings, messages(server)["ann@example.org"])
    assert set(text_links) == set(html_links) == {POST}


def test_a_test_copy_is_marked_not_counted(
    db: Database, make_settings: Any, server: SmtpServer
) -> None:
    settings = mailer(make_settings, db, server)
    mail = with_tracking(
        MailContent(
            "Test", f"Read {POST}\n", f'<p><a href="{POST.replace("&", "&amp;")}">x</a></p>'
        ),
        settings,
        MailRef(MailKind.ANNOUNCEMENT, 5),
    )
    with db.transaction() as session:
        outbox.enqueue_transactional(
            session,
            kind="test",
            to_email="ed@example.org",
            subscriber_id=None,
            mail=mail,
            domain="example.org",
        )
    drain(settings, db)
    text_links, html_links = links_out(settings, messages(server)["ed@example.org"])
    assert set(text_links) == set(html_links) and len(html_links) == 1
    link = tracked(settings, html_links[0])
    assert (link.url, link.counted, link.copy) == (POST, False, None)
    assert html_links[0].endswith(".t")


def test_alerts_and_announcements_track_their_own_mail(
    db: Database, make_settings: Any, server: SmtpServer, request: pytest.FixtureRequest
) -> None:
    settings = mailer(make_settings, db, server, track_opens=True)
    readers(db, "ann@example.org")
    # Noon UTC: outside the readers' quiet hours, so the alert goes now.
    noon = time_machine.travel(datetime(2026, 12, 2, 12, tzinfo=UTC), tick=True)
    noon.start()
    request.addfinalizer(noon.stop)
    with db.transaction() as session:
        session.execute(sa.text("UPDATE subscriptions SET alerts = true"))
        post, _ = store.add_post(session, title="Bridge closed", url=POST)
        post_id = int(post.id or 0)
    report = alerts.raise_alert(db, settings, post_id)
    drain(settings, db)
    (alert,) = messages(server).values()
    text_links, html_links = links_out(settings, alert)
    assert set(text_links) == set(html_links)
    assert {(tracked(settings, u).mail, tracked(settings, u).url) for u in html_links} == {
        (MailRef(MailKind.ALERT, report.alert_id), with_utm(f"alert-{report.alert_id}"))
    }
    # The open image names the alert and this copy's tag, and sits at the end of the HTML.
    html = parts(alert)[1]
    image = re.search(r'<img src="https://digest\.example\.com/o/([^"]+)\.gif" width="1"', html)
    assert image is not None and html.index(image.group(0)) > html.index("Bridge closed")
    opened = read_token(settings.secret, image.group(1))
    assert opened.url == "" and opened.copy == tracked(settings, html_links[0]).copy

    server.handler.received.clear()
    body = f"Read [the story]({POST}) and [our podcast](https://pod.example.com/1)."
    draft = announcements.Draft("Hello", body, None, audience(0))
    with db.transaction() as session:
        ident = int(announcements.create(session, SLUG, draft).id or 0)
    with db.transaction() as session:
        announcements.send(session, settings, ident, utcnow())
    drain(settings, db)
    (note,) = messages(server).values()
    text_links, html_links = links_out(settings, note)
    assert set(text_links) == set(html_links)
    found = {tracked(settings, u).url for u in html_links}
    # UTM goes on the link to a post, not on the editor's other links.
    assert found == {with_utm(f"announcement-{ident}"), "https://pod.example.com/1"}
    assert {tracked(settings, u).mail for u in html_links} == {
        MailRef(MailKind.ANNOUNCEMENT, ident)
    }
