"""Per-mail and per-day reports on both stores: editions made and sent by the real worker,
bounces and complaints recorded as reports are, unsubscribes through the real path, clicks as
the fold leaves them in ``link_clicks`` and ``mail_copies``; and the pure rules behind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from digest import editions, engagement, engagement_store, subscribers, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.bounces import record_reports
from digest.delivery.dsn import Kind, Report
from digest.delivery.running import drain
from digest.engagement_report import (
    CONTRACT_KEYS,
    Link,
    MailHead,
    Tally,
    click_rate,
    report,
    top_links,
    totals,
)
from digest.models import Delivery, LinkClick, MailCopy
from digest.posts import store
from tests.support import alerts as alert_support
from tests.support.clock import midday

D = Delivery.__table__  # type: ignore[attr-defined]
READERS = ["ana@example.com", "ben@example.com", "cy@example.com", "dee@example.com"]
STORY = "https://news.example.com/harbour"
# What bounce reports and a feedback loop say about Ana's, Ben's and Cy's copies.
HARD = (Kind.HARD, "ana@example.com", "5.1.1", "user unknown")
SOFT = (Kind.SOFT, "ben@example.com", "5.2.2", "mailbox full")
COMPLAINT = (Kind.COMPLAINT, "cy@example.com", "abuse", "")


def make_and_send(db: Database, settings: Settings, *, days_on: int = 0) -> int:
    """The daily edition for every active reader (a day on), sent by the worker; its id."""
    made = editions.make_edition(
        db,
        settings,
        cadence="daily",
        now=utcnow() + timedelta(days=days_on, minutes=1),
        due_only=False,
    )
    assert made is not None and made.edition_id is not None
    drain(settings, db)
    return int(made.edition_id)


def message_id(db: Database, edition_id: int, email: str) -> str:
    with db.transaction() as session:
        return str(
            session.execute(
                sa.select(D.c.message_id).where(D.c.edition_id == edition_id, D.c.to_email == email)
            ).scalar_one()
        )


def report_back(db: Database, settings: Settings, edition_id: int, *found: tuple) -> None:
    """Reports about the edition's mail, as bounce mails and feedback loops bring them."""
    reports = [
        Report(kind, email, message_id(db, edition_id, email), status, detail)
        for kind, email, status, detail in found
    ]
    with db.transaction() as session:
        record_reports(session, reports, settings)


def clicks(db: Database, mail: str, links: dict[str, tuple[int, int]], copies: list[str]) -> None:
    """Clicks as ``clicks.fold`` leaves them: per link, and per copy (``h``: a reader's click,
    ``m``: a scanner's only)."""
    now = utcnow()
    with db.transaction() as session:
        for i, (url, (human, machine)) in enumerate(links.items()):
            session.add(
                LinkClick(mail=mail, url_key=f"{i:032x}", url=url, human=human, machine=machine)
            )
        for i, who in enumerate(copies):
            session.add(
                MailCopy(
                    mail=mail,
                    copy_tag=f"c{i}",
                    human_click_at=now if who == "h" else None,
                    machine_click_at=now,
                )
            )


def unsubscribe(db: Database, email: str) -> None:
    with db.transaction() as session:
        person = subscribers.find(session, email)
        assert person is not None
        subscriptions.unsubscribe(session, person, 1)


@pytest.fixture
def sent(db: Database, settings: Settings) -> int:
    """Four readers and a story; their edition sent."""
    with db.transaction() as session:
        for email in READERS:
            subscriptions.add(session, email, confirmed=True)
        store.add_post(session, title="Harbour reopens", url=STORY)
    return make_and_send(db, settings)


def test_an_editions_report_counts_what_its_readers_and_their_servers_did(
    db: Database, settings: Settings, sent: int
) -> None:
    report_back(db, settings, sent, HARD, SOFT, COMPLAINT)
    report_back(db, settings, sent, COMPLAINT)  # recorded again, it changes nothing
    unsubscribe(db, "dee@example.com")
    clicks(
        db,
        f"e{sent}",
        {
            f"{STORY}?utm_source=main&utm_medium=email&utm_campaign=x": (3, 2),
            "https://elsewhere.example/page": (1, 2),
            "https://scanned.example/only": (0, 5),
        },
        ["h", "h", "m"],
    )
    with db.transaction() as session:
        found = engagement.mail_report(session, "edition", sent)
    assert (found.kind, found.id, found.mail, found.newsletter) == (
        "edition",
        sent,
        f"e{sent}",
        "digest",
    )
    # Ana's and Ben's copies bounced after they were accepted; Cy's and Dee's stayed sent.
    assert (found.sent, found.bounced, found.bounced_hard, found.bounced_soft) == (2, 2, 1, 1)
    assert (found.deferred, found.waiting, found.failed) == (0, 0, 0)
    assert (found.complaints, found.unsubscribes) == (1, 1)
    assert (found.human_clicks, found.machine_clicks, found.unique_clicks) == (4, 9, 2)
    assert found.click_rate == 1.0
    top = found.top_links
    assert [(k.human_clicks, k.title) for k in top] == [(3, "Harbour reopens"), (1, None)]
    assert top[0].url.startswith(STORY)


def test_an_unsubscribe_counts_for_the_last_mail_that_reached_the_reader_before(
    db: Database, settings: Settings, sent: int
) -> None:
    unsubscribe(db, "ana@example.com")
    with db.transaction() as session:
        # Published after the first edition's window closed: new for the second.
        later = utcnow() + timedelta(hours=1)
        post, _ = store.add_post(session, title="Ferry", url="https://news.example.com/ferry")
        post.published_at = post.first_seen_at = later
    second = make_and_send(db, settings, days_on=1)
    unsubscribe(db, "ben@example.com")
    unsubscribe(db, "cy@example.com")
    with db.transaction() as session:
        found = engagement.overview(session, newsletter=None, today=utcnow().date())
    by_id = {m.id: m for m in found.mails}
    assert (by_id[sent].unsubscribes, by_id[second].unsubscribes) == (1, 2)
    assert (by_id[sent].sent, by_id[second].sent) == (4, 3)  # Ana left before the second
    assert [m.id for m in found.mails] == [second, sent]  # newest first
    listed = found.as_dict()
    assert set(CONTRACT_KEYS) <= set(listed["editions"][0])
    assert listed["totals"]["unsubscribes"] == 3 and listed["totals"]["sent"] == 7


def test_the_days_count_readers_joining_and_leaving_by_how(
    db: Database, settings: Settings, sent: int
) -> None:
    report_back(db, settings, sent, HARD, COMPLAINT)
    unsubscribe(db, "dee@example.com")
    today = utcnow().date()
    with db.transaction() as session:
        rows = engagement.overview(session, newsletter=None, today=today, span=3).days
    assert [(d.newsletter, d.day) for d in rows] == [
        ("digest", today),
        ("digest", today - timedelta(days=1)),
        ("digest", today - timedelta(days=2)),
    ]
    first = rows[0]
    assert (first.joined, first.unsubscribes, first.bounces, first.complaints) == (4, 1, 1, 1)
    assert all(
        (d.joined, d.unsubscribes, d.bounces, d.complaints) == (0, 0, 0, 0) for d in rows[1:]
    )


def test_an_alert_is_reported_as_its_own_mail(db: Database, settings: Settings) -> None:
    from digest.alerts import raise_named

    zone, _ = midday(utcnow())  # no quiet hours there now
    alert_support.readers(db, ["ana@example.com", "ben@example.com"], timezone=zone)
    post = alert_support.post(db, "Bridge closed after storm")
    with db.transaction() as session:
        raised = raise_named(
            session, settings, str(post), newsletter=None, source="editor", now=utcnow()
        )
    drain(settings, db)
    with db.transaction() as session:
        heads = engagement_store.latest(session)
    assert [(h.kind, h.subject) for h in heads] == [("alert", "Bridge closed after storm")]
    alert_id = heads[0].id
    clicks(
        db, f"l{alert_id}", {"https://news.example.com/bridge-closed-after-storm": (2, 0)}, ["h"]
    )
    with db.transaction() as session:
        found = engagement.mail_report(session, "alert", alert_id)
    assert raised.post_id == post
    assert (found.mail, found.sent, found.unique_clicks, found.click_rate) == (
        f"l{alert_id}",
        2,
        1,
        0.5,
    )
    assert found.top_links[0].title == "Bridge closed after storm"


def test_an_unknown_mail_is_not_found(db: Database) -> None:
    from digest.errors import NotFound

    with db.transaction() as session, pytest.raises(NotFound, match="no edition #99"):
        engagement.mail_report(session, "edition", 99)


# -- the pure rules ----------------------------------------------------------------------------

HEAD = MailHead("edition", 1, 1, "Morning", datetime(2026, 12, 1, 7, tzinfo=UTC))
counts = st.integers(min_value=0, max_value=10_000)


@given(unique=counts, sent=counts)
def test_the_click_rate_is_unique_clicks_per_copy_sent(unique: int, sent: int) -> None:
    rate = click_rate(unique, sent)
    assert rate is None if sent == 0 else rate == round(unique / sent, 4)


@given(
    statuses=st.dictionaries(st.sampled_from(["sent", "bounced", "queued", "deferred"]), counts),
    hard=counts,
    links=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=15),
)
def test_a_reports_figures_add_up(statuses: dict[str, int], hard: int, links: list) -> None:
    tally = Tally(
        statuses,
        hard,
        links=[Link(f"https://x.example/{i}", h, m) for i, (h, m) in enumerate(links)],
    )
    r = report(HEAD, "main", tally, {})
    assert r.bounced_hard + r.bounced_soft == r.bounced == statuses.get("bounced", 0)
    assert 0 <= r.bounced_hard <= r.bounced
    assert r.human_clicks == sum(h for h, _ in links)
    assert len(r.top_links) <= 10
    assert [k.human_clicks for k in r.top_links] == sorted(
        (k.human_clicks for k in r.top_links), reverse=True
    )
    assert all(k.human_clicks > 0 for k in r.top_links)
    assert totals([r, r])["human_clicks"] == 2 * r.human_clicks


def test_a_link_is_named_by_its_post_whatever_utm_parameters_it_carries() -> None:
    posts = {"https://news.example.com/a": (7, "A story")}
    found = top_links(
        [
            Link("https://NEWS.example.com/a?utm_source=x&utm_campaign=e1#top", 5, 1),
            Link("https://news.example.com/a?page=2", 1, 0),
        ],
        posts,
    )
    assert [(k.post_id, k.title) for k in found] == [(7, "A story"), (None, None)]


def test_an_announcement_is_reported_once_sent(db: Database, settings: Settings) -> None:
    from digest import announcements
    from digest.announcement_rules import audience

    with db.transaction() as session:
        for email in READERS:
            subscriptions.add(session, email, confirmed=True)
        draft = announcements.Draft(
            "Our podcast", "Listen: https://pod.example/1", None, audience(0)
        )
        ident = int(announcements.create(session, None, draft).id or 0)
    with db.transaction() as session:
        assert engagement_store.latest(session) == []  # a draft is no mail yet
        announcements.send(session, settings, ident, utcnow())
    drain(settings, db)
    unsubscribe(db, "dee@example.com")
    clicks(db, f"a{ident}", {"https://pod.example/1": (1, 1)}, ["h"])
    with db.transaction() as session:
        found = engagement.mail_report(session, "announcement", ident)
        listed = engagement_store.latest(session)
    assert [(h.kind, h.id) for h in listed] == [("announcement", ident)]
    assert (found.subject, found.sent, found.unsubscribes) == ("Our podcast", 4, 1)
    assert (found.human_clicks, found.unique_clicks, found.click_rate) == (1, 1, 0.25)
    assert [(k.url, k.title) for k in found.top_links] == [("https://pod.example/1", None)]
