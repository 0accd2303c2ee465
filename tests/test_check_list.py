"""``digest check``'s list health (complaints, hard bounces) on both stores, and its sample
digest: size, one-click unsubscribe headers, SpamAssassin."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.deliverability.list_health import health_findings, is_hard_bounce, measure
from digest.deliverability.report import Finding, Level
from digest.deliverability.sample import sample_findings
from digest.models import Delivery, Edition, Post, Suppression
from tests.support.programs import IN_CI, find

D = Delivery.__table__
S = Suppression.__table__


def seed(
    db: Database,
    *,
    sent: int,
    complaints: int,
    hard: int = 0,
    soft: int = 0,
    old_complaints: int = 0,
) -> None:
    """One edition of ``sent`` digests a day ago (``hard`` and ``soft`` of them bounced), and
    complaints recorded in the window and before it."""
    now = utcnow()
    with db.transaction() as s:
        edition = Edition(key="daily:2026-11-29T07Z", cadence="daily")
        s.add(edition)
        s.add(Edition(key="test:1", cadence="daily", is_test=True))
        s.flush()

        def row(i: int, status: str, reply: str, sent_at: object) -> dict[str, object]:
            return {
                "kind": "digest", "edition_id": edition.id, "to_email": f"p{i}@example.org",
                "status": status, "message_id": f"<m{i}@brief.example>", "last_reply": reply,
                "sent_at": sent_at, "created_at": now, "updated_at": now,
                "next_attempt_at": now, "attempts": 1,
            }  # fmt: skip

        rows = [row(i, "sent", "250 2.0.0 OK", now - timedelta(days=1)) for i in range(sent)]
        rows += [
            row(sent + i, "bounced", "550 5.1.1 <x>: Recipient address rejected", None)
            for i in range(hard)
        ]
        rows += [
            row(sent + hard + i, "bounced", "552 5.2.2 Mailbox over quota", None)
            for i in range(soft)
        ]
        s.execute(sa.insert(D), rows)
        marks = [(f"c{i}", now - timedelta(days=2)) for i in range(complaints)]
        marks += [(f"o{i}", now - timedelta(days=40)) for i in range(old_complaints)]
        marks += [(f"b{i}", now) for i in range(hard)]
        if marks:
            s.execute(
                sa.insert(S),
                [
                    {"email_hash": h, "reason": "bounce" if h[0] == "b" else "complaint",
                     "created_at": at}
                    for h, at in marks
                ],
            )  # fmt: skip


def findings(db: Database) -> dict[str, Finding]:
    with db.transaction() as s:
        return {f.name: f for f in health_findings(measure(s, utcnow()))}


@pytest.mark.parametrize(("complaints", "level"), [(0, Level.OK), (2, Level.WARN), (4, Level.FAIL)])
def test_the_complaint_rate_against_one_and_three_in_a_thousand(
    db: Database, complaints: int, level: Level
) -> None:
    seed(db, sent=1000, complaints=complaints, old_complaints=50)
    found = findings(db)["complaint rate"]
    assert found.level is level, found
    assert f"{complaints} complaints for 1000 digests in 30 days" in found.detail
    assert bool(found.fix) is (level is not Level.OK)


def test_hard_bounces_of_the_latest_editions_over_two_percent_fail(db: Database) -> None:
    seed(db, sent=960, complaints=0, hard=30, soft=10)
    found = findings(db)["hard bounces"]
    assert found.level is Level.FAIL, found
    assert "30 of 1000 digests of the last 1 editions" in found.detail
    assert "digest bounces import" in found.fix


def test_soft_bounces_are_not_hard_bounces(db: Database) -> None:
    seed(db, sent=960, complaints=0, hard=10, soft=30)
    found = findings(db)["hard bounces"]
    assert found.level is Level.OK and found.detail.startswith("1.00%: 10 of 1000"), found


def test_an_empty_list_is_healthy(db: Database) -> None:
    found = findings(db)
    assert [f.level for f in found.values()] == [Level.OK, Level.OK]
    assert "no digest went out" in found["complaint rate"].detail


def test_hard_bounce_replies() -> None:
    assert is_hard_bounce("550 5.1.1 <a@b>: user unknown")
    assert is_hard_bounce("bounced after it was accepted: 5.1.10 null MX")
    assert not is_hard_bounce("552 5.2.2 Mailbox over quota")
    assert not is_hard_bounce("550 5.7.1 Message rejected by policy")


def add_posts(db: Database, n: int, *, title: str = "Story") -> None:
    now = utcnow()
    with db.transaction() as s:
        for i in range(n):
            at = now - timedelta(minutes=i + 1)
            s.add(
                Post(
                    guid=f"g{i}", title=f"{title} {i}", link=f"https://n.example/{i}",
                    summary="A summary.", categories=["World"], published_at=at, first_seen_at=at,
                    updated_at=at,
                )
            )  # fmt: skip


def test_without_posts_the_sample_is_not_checked(settings: Settings, db: Database) -> None:
    (found,) = sample_findings(db, settings, utcnow())
    assert found.level is Level.SKIP and "no digest to look at" in found.detail


def test_a_sample_digest_has_one_click_unsubscribe_and_fits_gmail(
    settings: Settings, db: Database
) -> None:
    add_posts(db, 3)
    found = {f.name: f for f in sample_findings(db, settings, utcnow(), spamassassin=False)}
    assert list(found) == ["sample size", "one-click unsubscribe"]
    assert all(f.level is Level.OK for f in found.values()), found
    assert found["sample size"].detail.startswith("HTML ")


def test_a_digest_over_gmails_clip_fails(make_settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=db.url, max_latest=100)
    add_posts(db, 100, title="Long words " * 80)
    found = {f.name: f for f in sample_findings(db, settings, utcnow(), spamassassin=False)}
    assert found["sample size"].level is Level.FAIL, found["sample size"]
    assert "Gmail clips" in found["sample size"].detail


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_spamassassin_scores_the_sample_when_installed(settings: Settings, db: Database) -> None:
    add_posts(db, 3)
    found = {f.name: f for f in sample_findings(db, settings, utcnow())}
    if find("spamassassin") is None and not IN_CI:
        assert found["SpamAssassin"].level is Level.SKIP
        return
    assert found["SpamAssassin"].level is Level.OK, found["SpamAssassin"]
    assert found["SpamAssassin"].detail.startswith("score ")
