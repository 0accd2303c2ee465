"""The breaking-news lane in ``digest status``, ``/metrics`` and ``/api/stats``: alerts sent,
held by budget, held by quiet hours, expired and folded into digests, from one set of counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from pytest import CaptureFixture, MonkeyPatch

from digest.alerts import raise_alert
from digest.config import load_settings
from digest.db import Database
from digest.delivery import outbox
from digest.models import Delivery
from digest.web.app import create_app
from tests.support.alerts import newsletter_settings, post, readers
from tests.support.cli import run

D = Delivery.__table__  # type: ignore[attr-defined]
AFTERNOON = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo: quiet hours there
TOKEN = "stats-admin-token-0123456789"
EXPECTED = {"sent": 1, "held_budget": 2, "held_quiet": 2, "expired": 1, "folded": 1}


def seed(db: Database) -> None:
    """Two alerts to two readers in London and one in Tokyo, a budget of one a day: the first
    goes to London (one sent, one expired before a worker came), Tokyo sleeps through both,
    and London's budget holds the second, one of which a digest then took."""
    settings = load_settings()
    newsletter_settings(db, alert_budget=1)
    ana, _ben = readers(db, ["ana@example.org", "ben@example.org"])
    readers(db, ["tokyo@example.org"], timezone="Asia/Tokyo")
    first = raise_alert(db, settings, str(post(db, "One")), now=AFTERNOON)
    second = raise_alert(db, settings, str(post(db, "Two")), now=AFTERNOON + timedelta(minutes=5))
    assert (first.queued, first.held_quiet) == (2, 1)
    assert (second.held_budget, second.held_quiet) == (2, 1)
    with db.transaction() as session:
        session.execute(
            sa.update(D)
            .where(D.c.subscriber_id == ana, D.c.period_key == f"1/alert:{first.alert_id}")
            .values(status="sent")
        )
        session.execute(
            sa.update(D)
            .where(D.c.subscriber_id == ana, D.c.period_key == f"1/alert:{second.alert_id}")
            .values(status="folded")
        )
        late = AFTERNOON + timedelta(hours=5)
        assert (
            outbox.claim(session, owner="w", limit=10, lease=timedelta(minutes=1), now=late) == []
        )


async def test_status_metrics_and_the_api_show_the_alert_lane(
    cli_env: Database, capsys: CaptureFixture[str], monkeypatch: MonkeyPatch
) -> None:
    db = cli_env
    seed(db)
    assert json.loads(run(capsys, "status", "--json").out)["alerts"] == EXPECTED
    text = run(capsys, "status").out
    assert (
        "alerts: sent 1, held by budget 2, held by quiet hours 2, expired 1, "
        "folded into digests 1\n"
    ) in text
    only = run(capsys, "status", "--json", "--newsletter", "digest").out
    assert json.loads(only)["alerts"] == EXPECTED
    monkeypatch.setenv("DIGEST_ADMIN_TOKEN", TOKEN)
    app = create_app(load_settings(), db)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        scraped = (await http.get("/metrics")).text
        stats = (await http.get("/api/stats", headers={"authorization": f"Bearer {TOKEN}"})).json()
    found = {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(scraped)
        for s in family.samples
        if s.name == "digest_alerts_total"
    }
    assert found == EXPECTED
    assert 'digest_alerts_total{outcome="held_quiet"} 2.0' in scraped
    assert stats["alerts"] == EXPECTED
