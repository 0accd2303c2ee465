"""The breaking-news lane end to end over real SMTP (aiosmtpd), on both stores: a post in a
newsletter's alert category reaches its opted-in readers within one scheduler tick; a reader
whose quiet hours hold it back gets it at the top of their next digest; a reader who was
alerted finds it not repeated under Latest Posts; a reader without alerts gets it as news.

The readers' zones are picked from the real clock (fixed-offset zones), so the test means the
same at whatever hour it runs.
"""

from __future__ import annotations

import asyncio
import email.policy
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from digest import editions, schedule
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from tests.support.alerts import newsletter_settings, post, readers
from tests.support.smtp_server import SmtpServer


def _zone_at(now: datetime, first: int, last: int) -> str:
    """A fixed-offset zone whose local hour is within [first, last] at ``now``."""
    for offset in range(-12, 15):
        # POSIX sign: Etc/GMT-3 is three hours ahead of UTC.
        name = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
        if first <= now.astimezone(ZoneInfo(name)).hour <= last:
            return name
    raise AssertionError("every local hour exists somewhere")


def _mail(smtp_server: SmtpServer) -> dict[str, list[EmailMessage]]:
    got: dict[str, list[EmailMessage]] = {}
    for r in smtp_server.handler.received:
        msg = message_from_bytes(r.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        got.setdefault(r.rcpt_tos[0], []).append(msg)
    return got


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture
def sent_to(db: Database, make_settings, smtp_server: SmtpServer) -> Settings:  # type: ignore[no-untyped-def]
    return make_settings(database_url=db.url, smtp_url=smtp_server.url)


def test_breaking_news_reaches_readers_in_one_tick_and_held_readers_in_their_digest(
    db: Database, sent_to: Settings, smtp_server: SmtpServer
) -> None:
    settings = sent_to
    now = utcnow()
    # 22:00-07:00 quiet; 3 hours to go: a reader at 01:00-03:59 is held, one at noon is not.
    awake, asleep = _zone_at(now, 11, 15), _zone_at(now, 1, 3)
    newsletter_settings(db, alert_categories=["Breaking"])
    readers(db, ["awake@example.org"], timezone=awake)
    readers(db, ["asleep@example.org"], timezone=asleep)
    readers(db, ["no-alerts@example.org"], timezone=awake, alerts=False)
    story = "Dam gives way upstream"
    post(db, story, categories=["Breaking"], first_seen_at=now - timedelta(minutes=2))

    asyncio.run(schedule.Scheduler(settings, db, clock=lambda: now, poll=False).digests_job())
    drain(settings, db)
    alerts = {who: [m for m in mails if _is_alert(m)] for who, mails in _mail(smtp_server).items()}
    assert {who for who, got in alerts.items() if got} == {"awake@example.org"}
    assert alerts["awake@example.org"][0]["Subject"] == f"Breaking: {story}"

    # The operator's edition, right after: everyone's digest who has not had today's (the
    # tick may have sent some already: their send hour had come in their zone).
    later = now + timedelta(minutes=1)
    editions.make_edition(db, settings, cadence="daily", now=later, due_only=False)
    drain(settings, db)
    digests = {
        who: [_text(m) for m in mails if not _is_alert(m)]
        for who, mails in _mail(smtp_server).items()
    }
    [held] = digests["asleep@example.org"]
    assert "BREAKING NEWS YOU WERE NOT ALERTED TO" in held and story in held
    [plain] = digests["no-alerts@example.org"]
    assert story in plain and "NOT ALERTED" not in plain
    # The alerted reader had nothing else new: no digest repeats it.
    assert not any(story in text for text in digests.get("awake@example.org", []))


def _is_alert(msg: EmailMessage) -> bool:
    return str(msg["Subject"]).startswith("Breaking:")
