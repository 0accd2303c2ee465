"""The product as its users meet it: ``digest serve`` as a subprocess, a real SMTP server, HTTP.

A reader subscribes on the site, confirms from the mail's link, gets the digest at their hour
from the scheduler, leaves with the one-click POST of its List-Unsubscribe header, and gets
nothing more, while a second reader who stayed does. Then SIGTERM: exit 0 within 30 s.
Runs on SQLite and again on PostgreSQL.
"""

from __future__ import annotations

import email.policy
import re
import subprocess
import time
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from digest.clock import utcnow
from digest.db import Database
from digest.models import Subscriber, Subscription
from tests.support.serve import DIGEST, Served, serve_env, serving, wait_until
from tests.support.smtp_server import Received, SmtpServer
from tests.support.stores import empty

pytestmark = pytest.mark.slow

TOKEN = "e2e-admin-token-0123456789"
SAMPLE_FEED = Path(__file__).resolve().parents[1] / "src" / "digest" / "samples" / "sample_feed.xml"
CONFIRM_LINK = re.compile(r"https?://[^\s\"<>]+/confirm/[A-Za-z0-9_.-]+")
S = Subscriber.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for serve: a new SQLite file (serve migrates it), or a PostgreSQL
    database emptied for this test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'e2e.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    db = Database(url)
    with db.engine.begin() as conn:
        empty(conn)
    db.dispose()
    return url


def parsed(received: Received) -> EmailMessage:
    """A received message, parsed."""
    msg = message_from_bytes(received.data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def mail_to(smtp: SmtpServer, address: str, subject_has: str = "") -> list[EmailMessage]:
    """Messages received for ``address`` (whose subject contains ``subject_has``)."""
    found = [parsed(r) for r in list(smtp.handler.received) if address in r.rcpt_tos]
    return [m for m in found if subject_has.lower() in str(m["Subject"]).lower()]


def text_of(msg: EmailMessage) -> str:
    """The plain-text part."""
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def subscribe_and_confirm(served: Served, smtp: SmtpServer, address: str) -> None:
    """What a reader does: the form, the mail, the link, the button."""
    answer = httpx.post(f"{served.url}/subscribe", data={"email": address, "name": "Reader"})
    assert answer.status_code in (200, 202)
    wait_until(lambda: mail_to(smtp, address), f"the confirmation mail to {address}")
    [confirmation] = mail_to(smtp, address)
    link = CONFIRM_LINK.search(text_of(confirmation))
    assert link, text_of(confirmation)
    page = httpx.get(link.group(0))  # what a link scanner does too: changes nothing
    assert page.status_code == 200
    assert "<form" in page.text
    confirmed = httpx.post(link.group(0))
    assert confirmed.status_code == 200


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    """Run ``digest ARGS`` as an operator would; its stdout."""
    done = subprocess.run(
        [DIGEST, *args], check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def api(served: Served, method: str, path: str, **kwargs: object) -> httpx.Response:
    """The admin API with the token."""
    return httpx.request(
        method, f"{served.url}{path}", headers={"authorization": f"Bearer {TOKEN}"}, **kwargs
    )  # type: ignore[arg-type]


def another_day_zone(now: datetime) -> str:
    """A zone whose date today differs from UTC's: a new period for whoever moves there."""
    return "Etc/GMT-14" if now.hour >= 10 else "Etc/GMT+12"


def test_subscribe_confirm_digest_unsubscribe_and_stop(
    store_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    now = utcnow()
    if now.hour == 23 and now.minute >= 57:
        time.sleep((60 - now.minute) * 60 - now.second + 5)  # keep the whole run on one day
        now = utcnow()
    env = serve_env(
        tmp_path,
        database_url=store_url,
        smtp_url=smtp_server.url,
        schedule_seconds="1",
        send_hour=str(now.hour),  # the readers' hour is now: the scheduler finds them due
        timezone="UTC",
        admin_token=TOKEN,
        site_name="The Daily Brief",
    )
    with serving(tmp_path, env) as served:
        env = {**env, "DIGEST_BASE_URL": served.url}
        # The editor imports the site's feed.
        run_cli(env, tmp_path, "posts", "import", str(SAMPLE_FEED))

        leaver, stayer = "leaver@example.com", "stayer@example.com"
        subscribe_and_confirm(served, smtp_server, leaver)
        subscribe_and_confirm(served, smtp_server, stayer)
        # Their hour began before they confirmed, so the scheduler would start them tomorrow
        # (test_first_digest.py); make them readers of a day's standing.
        db = Database(store_url)
        with db.transaction() as session:
            later = utcnow() - timedelta(days=1)
            session.execute(sa.update(Subscription.__table__).values(active_since=later))
        db.dispose()

        # Confirming welcomed them; the scheduler reaches their hour by itself and the worker
        # sends the digests: the confirmation, the welcome and a digest each.
        for address in (leaver, stayer):
            wait_until(lambda a=address: len(mail_to(smtp_server, a)) == 3, f"digest to {address}")
            assert len(mail_to(smtp_server, address, "welcome")) == 1
        [digest] = [
            m
            for m in mail_to(smtp_server, leaver)
            if m["List-Unsubscribe"] and "welcome" not in str(m["Subject"]).lower()
        ]
        assert "Stay in touch" not in str(digest["Subject"])
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        one_click = re.search(r"<(https?://[^>]+)>", str(digest["List-Unsubscribe"]))
        assert one_click, digest["List-Unsubscribe"]

        # The reader's mail client unsubscribes with one POST: 200, no redirect.
        left = httpx.post(
            one_click.group(1),
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        assert left.status_code == 200
        listed = api(served, "GET", "/api/subscribers", params={"status": "unsubscribed"})
        assert [s["email"] for s in listed.json()["items"]] == [leaver]

        # Next period for both readers: move them to a zone where it is another day already,
        # add news, and make an edition now. The one who stayed gets it; the leaver does not.
        db = Database(store_url)
        with db.transaction() as session:
            session.execute(sa.update(S).values(timezone=another_day_zone(utcnow())))
        db.dispose()
        run_cli(env, tmp_path, "posts", "add", "--title", "PM Kishida: Japan & NATO to Release "
                "Security Document", "--url", "https://news.example/kishida-nato")  # fmt: skip
        made = api(served, "POST", "/api/editions", json={"cadence": "daily", "due_only": False})
        assert made.status_code == 200, made.text
        assert made.json()["recipients"] == 1
        wait_until(lambda: len(mail_to(smtp_server, stayer)) == 4, "the stayer's second digest")
        wait_until(
            lambda: (
                api(served, "GET", "/api/stats").json()["deliveries"]["queued"] == 0
                and api(served, "GET", "/api/stats").json()["deliveries"]["sending"] == 0
            ),
            "an empty outbox",
        )
        assert len(mail_to(smtp_server, leaver)) == 3  # the confirmation, the welcome, a digest

        assert api(served, "GET", "/api/stats").json()["subscribers"]["unsubscribed"] == 1
        # /metrics shows only what no stranger's subscribe request can move: active readers,
        # and replies to the mail readers asked for: three digests and two welcomes (sent only
        # after a reader's own confirmation); the two confirmations are left out.
        metrics = httpx.get(f"{served.url}/metrics").text
        assert 'digest_subscribers{status="active"} 1.0' in metrics
        assert 'digest_smtp_replies{class="2xx"} 5.0' in metrics

        assert served.terminate() == 0  # within 30 s, or terminate() fails the test
    assert "stopped" in served.log_lines()[-1]
