"""Each newsletter's own mail, over real SMTP on both stores: its templates and name, its
From, List-Id and one-click link, the "unsubscribe from all" link, and the welcome mail."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import time_machine
from sqlmodel import col, select

from digest import editions, newsletters, subscribers, subscriptions
from digest.compose.render import Renderers
from digest.compose.select import Selection
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from digest.models import Delivery, Post
from digest.newsletter_config import configure
from digest.periods import first_due, local_words
from digest.states import DeliveryKind
from tests.support.cli import run
from tests.support.smtp_server import RecordingHandler, SmtpServer, start_server
from tests.support.web import client, confirm_link, confirm_mails, make_app, path_of

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
READER = "reader@example.com"


def _business(db: Database, folder: Path | None = None) -> int:
    """Newsletter 2, with its own name, sender and (optionally) templates."""
    with db.transaction() as session:
        made = newsletters.add(
            session,
            "business",
            name="Business Brief",
            description="Markets and companies, briefly.",
            sender="Business Brief <business@example.com>",
            templates_dir=str(folder) if folder else None,
        )
        return int(made.id or 0)


def _posts(db: Database) -> None:
    with db.transaction() as session:
        for guid in ("a1", "a2"):
            at = T0 - timedelta(hours=2)
            session.add(
                Post(
                    guid=guid,
                    title=f"Story {guid}",
                    link=f"https://news.example.com/{guid}",
                    summary=f"Summary of {guid}.",
                    categories=[],
                    published_at=at,
                    first_seen_at=at,
                    updated_at=at,
                )
            )


def _parsed(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _link_after(text: str, label: str) -> str:
    """The URL on the line of the text part that starts with ``label``."""
    (line,) = [x for x in text.splitlines() if x.startswith(label + ":")]
    return line.split(": ", 1)[1].strip()


def _list_ids(settings: Settings) -> tuple[str, str]:
    """The List-Id of newsletter 1 and of the business newsletter."""
    return (
        f"digest <{settings.list_identifier}>",
        f"Business Brief <business.{settings.list_identifier}>",
    )


def _one_click(message: EmailMessage) -> str:
    """The URL of a message's List-Unsubscribe (the first target)."""
    return str(message["List-Unsubscribe"]).split(">")[0].lstrip("<")


def _statuses(db: Database, email: str) -> dict[int, str]:
    with db.transaction() as session:
        person = subscribers.get(session, email)
        return {s.newsletter_id: s.status for s in subscribers.subscriptions_of(session, person.id)}


@pytest.fixture
def server() -> SmtpServer:
    started = start_server(RecordingHandler())
    yield started  # type: ignore[misc]
    started.stop()


def test_a_newsletter_renders_with_its_own_templates_and_name(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "business-templates"
    folder.mkdir()
    (folder / "digest_subject.txt").write_text("{{ newsletter_name }} today, from {{ site_name }}")
    business = _business(db, folder)
    with db.transaction() as session:
        first = configure(newsletters.by_id(session, 1), settings)
        second = configure(newsletters.by_id(session, business), settings)
    renderers = Renderers(settings)
    nothing = Selection(featured=(), latest=(), window_start=T0, window_end=T0, skip=False)
    day = T0.date()
    own = renderers.for_newsletter(second).render_body(nothing, cadence="daily", local_date=day)
    assert own.content.subject == "Business Brief today, from digest"
    # The files it does not override come from ours: the masthead names the newsletter.
    assert "Business Brief" in own.content.text.splitlines()[0]
    site = renderers.for_newsletter(first).render_body(nothing, cadence="daily", local_date=day)
    assert site.content.subject == "digest: your daily digest"  # newsletter 1 as before
    # Kept for the process, made again when the newsletter's name changes.
    assert renderers.for_newsletter(second) is renderers.for_newsletter(second)
    with db.transaction() as session:
        newsletters.edit(session, newsletters.by_id(session, business), name="Money Matters")
        renamed = configure(newsletters.by_id(session, business), settings)
    again = renderers.for_newsletter(renamed).render_body(nothing, cadence="daily", local_date=day)
    assert again.content.subject == "Money Matters today, from digest"


async def test_two_newsletters_mail_one_reader_apart_and_each_can_be_left(
    db: Database, make_settings, server: SmtpServer
) -> None:
    settings = make_settings(database_url=db.url, smtp_url=server.url)
    business = _business(db)
    _posts(db)
    with time_machine.travel(T0 - timedelta(days=30), tick=False), db.transaction() as session:
        subscriptions.add(session, READER, newsletter_id=1, confirmed=True)
        subscriptions.add(session, READER, newsletter_id=business, confirmed=True)
    # At the edition's hour, as the scheduler would be: queued, claimed and sent in its day.
    with time_machine.travel(T0, tick=True):
        for slug in ("digest", "business"):
            made = editions.make_edition(
                db, settings, cadence="daily", now=T0, due_only=False, newsletter=slug
            )
            assert made is not None and made.recipients == 1
        report = await asyncio.to_thread(drain, settings, db)
    assert report.sent == 2
    by_list = {}
    for received in server.handler.received:
        message = _parsed(received.data)
        by_list[message["List-Id"]] = message
    site_list, biz_list = _list_ids(settings)
    assert set(by_list) == {site_list, biz_list}
    site, biz = by_list[site_list], by_list[biz_list]
    assert biz["From"] == "Business Brief <business@example.com>"
    assert site["From"] != biz["From"]
    assert "| Business Brief" in biz["Subject"] and "| digest" in site["Subject"]
    one_click = {m["List-Id"]: _one_click(m) for m in (site, biz)}
    assert len(set(one_click.values())) == 2
    all_links = {_link_after(_text(m), "Unsubscribe from all") for m in (site, biz)}
    assert not all_links & set(one_click.values())
    html = biz.get_body(preferencelist=("html",))
    assert html is not None and "Unsubscribe from all" in str(html.get_content())

    app = make_app(settings, db)
    async with client(app) as http:
        left = await http.post(
            path_of(one_click[biz["List-Id"]]), files={"List-Unsubscribe": (None, "One-Click")}
        )
        assert left.status_code == 200
        assert _statuses(db, READER) == {1: "active", business: "unsubscribed"}
        everything = await http.post(
            path_of(_link_after(_text(site), "Unsubscribe from all")),
            files={"List-Unsubscribe": (None, "One-Click")},
        )
        assert everything.status_code == 200
    assert _statuses(db, READER) == {1: "unsubscribed", business: "unsubscribed"}


def _welcomes(db: Database) -> list[Delivery]:
    with db.transaction() as session:
        return list(
            session.exec(
                select(Delivery)
                .where(Delivery.kind == DeliveryKind.WELCOME.value)
                .order_by(col(Delivery.id))
            ).all()
        )


async def test_confirming_sends_one_welcome_per_newsletter_however_often_it_is_posted(
    db: Database, make_settings, server: SmtpServer
) -> None:
    settings = make_settings(
        database_url=db.url, smtp_url=server.url, timezone="Europe/Paris", send_hour=7
    )
    business = _business(db)
    app = make_app(settings, db)
    # Tuesday 1 December 2026, 09:30 in Paris: past today's 07:00, so the first is tomorrow's.
    with time_machine.travel(datetime(2026, 12, 1, 8, 30, tzinfo=UTC), tick=True):
        async with client(app) as http:
            asked = await http.post(
                "/subscribe", data={"email": READER, "newsletters": "digest,business"}
            )
            assert asked.status_code == 200
            ((_, body),) = confirm_mails(db, READER)
            link = path_of(confirm_link(body))
            answers = await asyncio.gather(http.post(link), http.post(link))
            assert [a.status_code for a in answers] == [200, 200]
            assert (await http.post(link)).status_code == 200
        assert _statuses(db, READER) == {1: "active", business: "active"}
        welcomes = _welcomes(db)
        assert sorted(w.period_key or "" for w in welcomes) == ["1/welcome", f"{business}/welcome"]
        report = await asyncio.to_thread(drain, settings, db)
    assert report.sent == 3  # the confirmation and two welcomes
    mails = [_parsed(r.data) for r in server.handler.received]
    welcome = {m["List-Id"]: m for m in mails if str(m["Subject"]).startswith("Welcome")}
    site_list, biz_list = _list_ids(settings)
    assert set(welcome) == {site_list, biz_list}
    biz = welcome[biz_list]
    assert biz["Subject"] == "Welcome to Business Brief"
    assert biz["From"] == "Business Brief <business@example.com>"
    assert biz["List-Unsubscribe"] and biz["List-Unsubscribe-Post"]
    text = _text(biz)
    assert "Markets and companies, briefly." in text
    assert "Wednesday 2 December at 07:00 (Europe/Paris)" in text
    assert "/preferences/" in _link_after(text, "Change what you get (how often, topics, hour)")


def test_the_first_digest_is_today_before_the_hour_and_tomorrow_after() -> None:
    before = first_due("daily", "Europe/Paris", 7, datetime(2026, 12, 1, 5, 0, tzinfo=UTC))
    after = first_due("daily", "Europe/Paris", 7, datetime(2026, 12, 1, 6, 1, tzinfo=UTC))
    assert local_words(before, "Europe/Paris") == "Tuesday 1 December at 07:00 (Europe/Paris)"
    assert local_words(after, "Europe/Paris") == "Wednesday 2 December at 07:00 (Europe/Paris)"
    weekly = first_due(
        "weekly", "Asia/Tokyo", 8, datetime(2026, 12, 1, 0, 0, tzinfo=UTC), weekly_day="monday"
    )
    assert local_words(weekly, "Asia/Tokyo") == "Monday 7 December at 08:00 (Asia/Tokyo)"


def test_cli_add_sends_a_welcome_only_when_asked(cli_env: Database, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "subscribers", "add", "quiet@example.com", "--confirmed").code == 0
    assert _welcomes(cli_env) == []
    assert (
        run(capsys, "subscribers", "add", "warm@example.com", "--confirmed", "--welcome").code == 0
    )
    (welcome,) = _welcomes(cli_env)
    assert welcome.to_email == "warm@example.com" and welcome.period_key == "1/welcome"
    # Added again with --welcome: already active, already welcomed, nothing more.
    assert (
        run(capsys, "subscribers", "add", "warm@example.com", "--confirmed", "--welcome").code == 0
    )
    assert len(_welcomes(cli_env)) == 1


def test_cli_import_sends_no_welcome_unless_asked(
    cli_env: Database, capsys, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    plain = tmp_path / "plain.csv"
    plain.write_text("email,status\na@example.com,active\nb@example.com,active\n")
    assert run(capsys, "subscribers", "import", str(plain), "--status", "active").code == 0
    assert _welcomes(cli_env) == []
    warm = tmp_path / "warm.csv"
    warm.write_text("email,status\nc@example.com,active\nd@example.com,pending\n")
    assert (
        run(capsys, "subscribers", "import", str(warm), "--welcome", "--status", "active").code == 0
    )
    assert [w.to_email for w in _welcomes(cli_env)] == ["c@example.com"]
