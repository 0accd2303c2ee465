"""Sending alerts: what the outbox hands a worker (never held ones, never late ones, never to a
reader who turned alerts off), and the mail itself, end to end over real SMTP."""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage

import sqlalchemy as sa
from pytest import CaptureFixture, MonkeyPatch

from digest import links
from digest.alerts import raise_alert
from digest.config import Settings, load_settings
from digest.db import Database
from digest.delivery import outbox
from digest.links_auth import linked_subscriber
from digest.models import Subscription
from digest.tokens import Purpose
from tests.support.alerts import alert_rows, newsletter_settings, post, readers
from tests.support.cli import run
from tests.support.smtp_server import SmtpServer
from tests.support.tracked import target

U = Subscription.__table__  # type: ignore[attr-defined]
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def claim(db: Database, now: datetime) -> list[int]:
    """What a worker claiming at ``now`` is handed (delivery ids)."""
    with db.transaction() as session:
        return [c.id for c in outbox.claim(session, owner="w", limit=100, lease=LEASE, now=now)]


def test_an_alert_not_sent_by_its_send_by_time_is_skipped_not_sent_late(
    db: Database, settings: Settings
) -> None:
    readers(db, ["a@example.org", "b@example.org"])
    report = raise_alert(db, settings, str(post(db)), now=NOON)
    # The service was down for four hours: the alert expired at 15:00.
    assert claim(db, NOON + timedelta(hours=4)) == []
    rows = alert_rows(db)
    assert {r.status for r in rows} == {"skipped"}
    assert {r.last_reply for r in rows} == {"past its send-by time; not sent late"}
    assert report.expires_at == NOON + timedelta(hours=3)


def test_held_alerts_are_never_claimed_and_a_waiting_one_goes_when_quiet_hours_end(
    db: Database, settings: Settings
) -> None:
    newsletter_settings(db, alert_expiry_hours=10)
    readers(db, ["tokyo@example.org"], timezone="Asia/Tokyo")
    newsletter_settings(db, alert_budget=0)  # everyone held by budget at first
    now = datetime(2026, 12, 1, 14, tzinfo=UTC)  # 23:00 in Tokyo, quiet until 22:00 UTC
    held = raise_alert(db, settings, str(post(db, "One")), now=now)
    assert held.held_budget == 1
    newsletter_settings(db, alert_budget=2)
    waiting = raise_alert(db, settings, str(post(db, "Two")), now=now)
    assert waiting.queued == 1
    assert claim(db, now) == []  # Tokyo sleeps
    morning = datetime(2026, 12, 1, 22, tzinfo=UTC)
    [claimed] = claim(db, morning + timedelta(minutes=1))
    rows = {r.id: r for r in alert_rows(db)}
    assert rows[claimed].period_key == f"1/alert:{waiting.alert_id}"
    # The held row stays held whenever a worker comes by.
    assert claim(db, morning + timedelta(days=3)) == []
    assert sorted(r.status for r in rows.values()) == ["held", "sending"]


def test_an_alert_whose_reader_turned_alerts_off_since_is_cancelled(
    db: Database, settings: Settings
) -> None:
    keeps, stops = readers(db, ["keeps@example.org", "stops@example.org"])
    raise_alert(db, settings, str(post(db)), now=NOON)
    with db.transaction() as session:
        session.execute(sa.update(U).where(U.c.subscriber_id == stops).values(alerts=False))
    claimed = claim(db, NOON + timedelta(seconds=1))
    rows = {r.subscriber_id: r for r in alert_rows(db)}
    assert claimed == [rows[keeps].id]
    assert rows[stops].status == "cancelled" and rows[stops].last_reply == "alerts turned off"


def parsed(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_post_alerted_from_the_cli_reaches_the_opted_in_readers_over_smtp(
    cli_env: Database,
    smtp_server: SmtpServer,
    capsys: CaptureFixture[str],
    monkeypatch: MonkeyPatch,
) -> None:
    db = cli_env
    monkeypatch.setenv("DIGEST_SMTP_URL", smtp_server.url)
    newsletter_settings(db, quiet_hours="off")  # whatever the hour the test runs at
    opted = readers(db, ["ana@example.org", "ben@example.org"])
    readers(db, ["digest-only@example.org"], alerts=False)
    pid = post(db, "Bridge closed after storm", image_url="https://news.example.com/bridge.jpg")
    raised = run(capsys, "posts", "alert", str(pid))
    assert raised.code == 0, raised.err
    assert raised.out.startswith("queued 2, held by budget 0, held by quiet hours 0; expires at ")
    again = run(capsys, "posts", "alert", str(pid))
    assert again.code == 1 and again.out == ""
    assert again.err.startswith(f"error: post {pid} was already alerted in digest at ")
    assert again.err.count("\n") == 1
    sent = run(capsys, "worker", "--until-empty")
    assert sent.code == 0, sent.err
    received = {r.rcpt_tos[0]: parsed(r.data) for r in smtp_server.handler.received}
    assert sorted(received) == ["ana@example.org", "ben@example.org"]
    settings = load_settings()
    for sid, address in zip(opted, ["ana@example.org", "ben@example.org"], strict=True):
        msg = received[address]
        assert msg["Subject"] == "Breaking: Bridge closed after storm"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = str(msg["List-Unsubscribe"]).strip("<>")
        token = links.unsubscribe_token_in(url)
        assert token is not None
        with db.transaction() as session:
            linked = linked_subscriber(session, settings, token, Purpose.UNSUBSCRIBE)
        # The one click turns off this newsletter's alerts, for this reader, nothing more.
        assert linked is not None and linked.id == sid
        assert linked.alerts_only and linked.newsletter_id == 1
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        plain, page = str(text.get_content()), str(html.get_content())
        story = re.search(r"Read the story: (\S+)", plain)
        assert story is not None
        # Through /r/ (aggregate tracking by default), to the post with the newsletter's UTM.
        assert target(settings, story.group(1)).startswith(
            "https://news.example.com/bridge-closed-after-storm"
            "?utm_source=digest&utm_medium=email&utm_campaign=alert-"
        )
        assert "asked for breaking-news alerts from digest" in plain
        assert f"Turn off alerts (you keep the digest): {url}" in plain
        assert links.preferences_url(settings, sid, address).rsplit("/", 1)[0] in plain
        assert address in plain and "%%" not in plain and "%%" not in page
        assert 'src="https://news.example.com/bridge.jpg"' in page
        assert "Read the story" in page and url in page
    status = run(capsys, "status")
    assert "alerts: sent 2, held by budget 0, held by quiet hours 0, expired 0, folded into" in (
        status.out
    )
