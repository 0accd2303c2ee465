"""Engagement as the newsroom meets it: ``digest serve`` as a subprocess, a real SMTP server, a
webhook receiver, HTTP, and ``digest stats``.

An operator adds a webhook; a reader subscribes and confirms (the receiver gets
``subscriber.pending`` then ``subscriber.confirmed``, signed); the digest arrives with its
post links through ``/r/`` (UTM parameters inside); the reader clicks one and lands on the
post; a mail scanner's HEAD is counted apart; ``digest stats --json`` shows the click within
10 seconds. Runs on SQLite and again on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from digest.clock import utcnow
from digest.db import Database
from digest.models import Subscription
from tests.support.serve import serve_env, serving, wait_until
from tests.support.smtp_server import SmtpServer
from tests.support.webhook_receiver import webhook_receiver
from tests.test_e2e import (
    SAMPLE_FEED,
    mail_to,
    run_cli,
    store_url,  # noqa: F401  (the fixture: SQLite, then PostgreSQL)
    subscribe_and_confirm,
)

pytestmark = pytest.mark.slow

TRACKED = re.compile(r'href="(https?://[^"]+/r/[^"]+)"')
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


def _html_of(msg) -> str:  # type: ignore[no-untyped-def]
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _stats(env: dict[str, str], cwd: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(run_cli(env, cwd, "stats", "--json"))


def test_a_readers_click_reaches_the_post_and_the_stats_and_events_reach_the_receiver(
    store_url: str,  # noqa: F811
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    now = utcnow()
    if now.hour == 23 and now.minute >= 57:
        time.sleep((60 - now.minute) * 60 - now.second + 5)
        now = utcnow()
    env = serve_env(
        tmp_path,
        database_url=store_url,
        smtp_url=smtp_server.url,
        schedule_seconds="1",
        send_hour=str(now.hour),
        timezone="UTC",
        allow_private_webhooks="true",
    )
    with webhook_receiver() as receiver, serving(tmp_path, env) as served:
        env = {**env, "DIGEST_BASE_URL": served.url}
        added = json.loads(
            run_cli(
                env,
                tmp_path,
                "webhooks",
                "add",
                receiver.url,
                "--events",
                "subscriber.pending,subscriber.confirmed",
                "--json",
            )
        )
        run_cli(env, tmp_path, "posts", "import", str(SAMPLE_FEED))
        reader = "reader@example.com"
        subscribe_and_confirm(served, smtp_server, reader)

        # The receiver hears of both steps, each POST signed over its timestamp and body.
        got = receiver.wait_for(2, timeout=60)
        # (Events may arrive out of order, as the README tells receivers: ``created`` orders.)
        assert sorted(r.event["type"] for r in got) == [
            "subscriber.confirmed",
            "subscriber.pending",
        ]
        for r in got:
            t, v1 = (p.split("=", 1)[1] for p in r.headers["Digest-Signature"].split(","))
            mac = hmac.new(added["secret"].encode(), t.encode() + b"." + r.body, hashlib.sha256)
            assert hmac.compare_digest(mac.hexdigest(), v1)
            assert set(r.event) >= {"id", "type", "created", "data"}

        db = Database(store_url)
        with db.transaction() as session:
            later = utcnow() - timedelta(days=1)
            session.execute(sa.update(Subscription.__table__).values(active_since=later))
        db.dispose()
        wait_until(lambda: len(mail_to(smtp_server, reader)) == 3, "the reader's digest")
        [digest] = [
            m
            for m in mail_to(smtp_server, reader)
            if m["List-Unsubscribe"] and "welcome" not in str(m["Subject"]).lower()
        ]
        links = TRACKED.findall(_html_of(digest))
        assert links, "the digest's post links go through /r/"
        link = links[0].replace("&amp;", "&")

        # A mail scanner's HEAD first: redirected, but not a reader.
        head = httpx.head(link, follow_redirects=False)
        assert head.status_code == 302
        # Then the reader, in a browser: the same link again is no burst of distinct links.
        landed = httpx.get(link, headers={"user-agent": BROWSER}, follow_redirects=False)
        assert landed.status_code == 302
        target = landed.headers["location"]
        assert target.startswith("https://") and "/r/" not in target
        query = parse_qs(urlsplit(target).query)
        assert query["utm_medium"] == ["email"] and query["utm_source"]

        # A link whose signed part is altered is a 404 page with a way to the site, never a
        # redirect (an altered copy part still reaches the proven URL, uncounted).
        base, token = link.split("/r/", 1)
        altered = token[:3] + ("A" if token[3] != "A" else "B") + token[4:]
        bad = httpx.get(f"{base}/r/{altered}", follow_redirects=False)
        assert bad.status_code == 404 and "location" not in bad.headers
        assert served.url in bad.text

        deadline = time.monotonic() + 10
        while True:
            totals = _stats(env, tmp_path)["totals"]
            if totals["human_clicks"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert totals["human_clicks"] == 1, totals
        assert totals["unique_clicks"] == 1
        assert totals["machine_clicks"] == 1
        assert totals["sent"] >= 1
        assert served.terminate() == 0
