"""The email services' API transports (SES, Postmark, Mailgun) against local stand-ins that speak
each API's request and reply shapes: the exact bytes sent, every reply's outcome, throttling."""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import Callable
from datetime import timedelta
from email import policy
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from digest.db import Database
from digest.delivery.esp_targets import parse_esp_url
from digest.delivery.replies import Stage
from digest.delivery.running import drain, transport_from_settings
from digest.delivery.store import SqlStore
from digest.delivery.throttle import RateLimiter
from digest.delivery.transport import Result
from digest.delivery.worker import Worker
from digest.errors import SettingsError
from digest.models import Delivery, Subscription
from tests.support.cli import run
from tests.support.esp_server import AWS_KEY_ID, AWS_SECRET, EspServer, esp_url
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.smtp_server import free_port

D = Delivery.__table__
SERVICES = ["ses", "postmark", "mailgun"]
# A message as digest builds them: non-ASCII name and subject, the list headers, a line of
# 998 characters, a DKIM signature that must survive where the service sends raw MIME.
MESSAGE = (
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s1;\r\n"
    b" h=From:To:Subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
    b"From: =?utf-8?q?La_Gazette_=C3=A9t=C3=A9?= <news@example.org>\r\n"
    b"To: =?utf-8?q?Ren=C3=A9e?= <renee@example.org>\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_news?=\r\n"
    b"Message-ID: <e1.1.0123456789abcdef@example.org>\r\n"
    b"List-Unsubscribe: <https://news.example.org/u/tok>\r\n"
    b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n--b1\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    + "Caf\u00e9 ".encode()
    + b"x" * 993
    + b"\r\n--b1\r\n"
    b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    b"<p>Caf\xc3\xa9</p>\r\n--b1--\r\n"
)


def rows(db: Database) -> list[Any]:
    with db.transaction() as session:
        return list(session.execute(sa.select(D).order_by(D.c.id)).all())


async def _send(settings: Any, data: bytes, rcpt: str = "renee@example.org") -> Result:
    transport = transport_from_settings(settings)
    try:
        return await transport.send("bounces@example.org", rcpt, data)
    finally:
        await transport.close()


@pytest.mark.parametrize("service", ["ses", "mailgun"])
async def test_raw_mime_services_get_the_exact_bytes(
    service: str, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings = make_settings(smtp_url=esp_url(service, esp_server.url))
    result = await _send(settings, MESSAGE)
    assert result.code == 250 and result.classify().verdict.value == "sent", result
    [seen] = esp_server.app.seen
    assert seen.message == MESSAGE  # Message-ID, List-Unsubscribe and DKIM-Signature intact
    assert seen.rcpt == "renee@example.org"
    if service == "ses":
        assert seen.fields["FeedbackForwardingEmailAddress"] == "bounces@example.org"


async def test_ses_requests_carry_a_sigv4_signature_over_what_was_sent(
    esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings = make_settings(smtp_url=esp_url("ses", esp_server.url))
    await _send(settings, MESSAGE)
    [seen] = esp_server.app.seen
    # Signed again, independently, at the request's own time: the same signature means it
    # covers this method, URL, these headers and exactly this body.
    stamp = seen.headers["x-amz-date"]
    with time_machine.travel(
        f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z",
        tick=False,
    ):
        again = AWSRequest(
            method="POST",
            url=esp_server.url + seen.path,
            data=seen.body,
            headers={"Content-Type": seen.headers["content-type"]},
        )
        SigV4Auth(Credentials(AWS_KEY_ID, AWS_SECRET), "ses", "eu-west-1").add_auth(again)
    assert again.headers["Authorization"] == seen.headers["authorization"]


async def test_postmark_gets_the_fields_and_every_list_header(
    esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    url = esp_url("postmark", esp_server.url, stream="broadcast")
    settings = make_settings(smtp_url=url)
    result = await _send(settings, MESSAGE)
    assert result.classify().verdict.value == "sent", result
    [seen] = esp_server.app.seen
    f = seen.fields
    assert f["From"] == "La Gazette \u00e9t\u00e9 <news@example.org>"
    assert f["To"] == "Ren\u00e9e <renee@example.org>"
    assert f["Subject"] == "Caf\u00e9 news"
    assert f["MessageStream"] == "broadcast"
    assert f["TextBody"].startswith("Caf\u00e9 " + "x" * 993)
    assert f["HtmlBody"] == "<p>Caf\u00e9</p>"
    headers = {h["Name"]: h["Value"] for h in f["Headers"]}
    assert headers == {
        "Message-ID": "<e1.1.0123456789abcdef@example.org>",
        "List-Unsubscribe": "<https://news.example.org/u/tok>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }  # Postmark signs with its own DKIM key: ours cannot survive its rebuild


@pytest.mark.parametrize("service", SERVICES)
def test_an_edition_goes_out_through_each_service(
    service: str, db: Database, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings = make_settings(
        database_url=db.url, smtp_url=esp_url(service, esp_server.url), smtp_connections=4
    )
    add_subscribers(db, 30)
    edition_id, body_id = make_edition(db)
    assert enqueue(db, edition_id, body_id) == 30
    report = drain(settings, db)
    assert (report.sent, report.deferred, report.failed, report.bounced) == (30, 0, 0, 0)
    by_rcpt = {r.to_email: r for r in rows(db)}
    assert len(esp_server.app.seen) == 30
    for seen in esp_server.app.seen:
        row = by_rcpt[seen.rcpt.rpartition("<")[2].rstrip(">")]
        if service == "postmark":
            headers = {h["Name"]: h["Value"] for h in seen.fields["Headers"]}
            # The quoted-printable parts decoded, with the reader's own name in them.
            assert seen.fields["TextBody"].startswith("Hi P ")
            assert seen.fields["HtmlBody"] == "<p>Hi</p>"
        else:
            headers = dict(email.message_from_bytes(seen.message, policy=policy.compat32))
        assert headers["Message-ID"] == row.message_id
        assert headers["List-Unsubscribe"].startswith("<http")
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {r.status for r in by_rcpt.values()} == {"sent"}
    assert all(service in r.last_reply.lower() for r in by_rcpt.values())


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("fault", "status"),
    [("throttle", "deferred"), ("error", "deferred"), ("hang", "deferred"), ("invalid", "failed")],
)
def test_each_reply_ends_as_the_smtp_path_would_end_it(
    service: str,
    fault: str,
    status: str,
    db: Database,
    esp_server: EspServer,
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings(
        database_url=db.url,
        smtp_url=esp_url(service, esp_server.url),
        smtp_connections=1,
        smtp_timeout=0.5,
    )
    add_subscribers(db, 1)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    esp_server.app.plan.append(fault)
    drain(settings, db)
    [row] = rows(db)
    assert row.status == status, row.last_reply
    with db.transaction() as session:
        person = session.execute(sa.select(Subscription.status)).scalar_one()
    assert person == "active"  # never bounced for the service's trouble
    if fault == "throttle":
        assert "429" in row.last_reply
    if fault == "hang":
        assert "did not answer" in row.last_reply


def test_a_postmark_inactive_recipient_is_a_hard_bounce(
    db: Database, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    add_subscribers(db, 2)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    esp_server.app.plan.append("inactive")
    settings = make_settings(
        database_url=db.url, smtp_url=esp_url("postmark", esp_server.url), smtp_connections=1
    )
    drain(settings, db)
    statuses = sorted(r.status for r in rows(db))
    assert statuses == ["bounced", "sent"]
    with db.transaction() as session:
        people = set(session.execute(sa.select(Subscription.status)).scalars())
    assert people == {"bounced", "active"}  # the inactive address is stopped and suppressed


async def test_wrong_credentials_defer_the_mail_rather_than_fail_it(
    esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    url = esp_url("postmark", esp_server.url).replace("postmark-server", "wrong-server")
    result = await _send(make_settings(smtp_url=url), MESSAGE)
    verdict = result.classify()
    assert verdict.verdict.value == "defer" and verdict.systemic, result


async def test_throttling_slows_the_worker_and_it_recovers(
    db: Database, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings = make_settings(
        database_url=db.url, smtp_url=esp_url("mailgun", esp_server.url), smtp_connections=2
    )
    add_subscribers(db, 20)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    esp_server.app.plan.extend(["", "", "throttle", "throttle"])
    store = SqlStore(db, owner="t", lease=timedelta(seconds=60))
    transport = transport_from_settings(settings)
    worker = Worker(settings, store, transport)
    assert worker.rate.rate == 0  # no limit configured
    await worker.run(asyncio.Event(), until_empty=True)
    await transport.close()
    assert worker.rate.rate > 0  # a limit now, from the throttling
    statuses = [r.status for r in rows(db)]
    assert statuses.count("deferred") == 2 and statuses.count("sent") == 18
    assert worker.breaker.trips == 0  # throttling is the rate's business, not the breaker's


def test_rate_limiter_halves_once_per_wave_and_grows_back() -> None:
    now = [100.0]
    limiter = RateLimiter(40, clock=lambda: now[0])
    limiter.slow_down()
    limiter.slow_down()  # the other requests in flight: the same signal
    assert limiter.rate == 20
    now[0] += 1.5
    limiter.slow_down()
    assert limiter.rate == 10
    now[0] += 5  # additive increase: a twentieth of the throttled rate (20) per second
    limiter.delay()
    assert limiter.rate == pytest.approx(15)
    now[0] += 60
    limiter.delay()
    assert limiter.rate == 40  # never above the configured rate
    unlimited = RateLimiter(0, clock=lambda: now[0])
    for _ in range(100):
        unlimited._count()
        now[0] += 0.005  # 200 a second
    unlimited.slow_down()
    assert unlimited.rate == pytest.approx(100, rel=0.05)
    now[0] += 60
    assert unlimited.delay() == 0 and unlimited.rate == 0  # back to no limit


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ses://moon-1", "not an AWS region"),
        ("ses://eu-west-1?endpoint=ftp://x", "endpoint must be an http(s) URL"),
        ("postmark://", "write postmark://SERVER_TOKEN@"),
        ("mailgun://key@", "write mailgun://API_KEY@DOMAIN"),
        ("mailgun://key@mg.example.com?color=red", "takes no option 'color'"),
        ("postmark://t@?webhook_secret=short", "24 characters or more"),
        ("ses://eu-west-1?sns_topic=arn:aws:sqs:eu-west-1:123456789012:q", "not an SNS topic"),
        ("postmark://t@?sns_topic=arn:aws:sns:eu-west-1:123456789012:t", "no option"),
    ],
)
def test_a_bad_service_url_stops_start_up_with_one_line(
    url: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
    make_settings: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_settings()  # clears DIGEST_* and moves into a temporary folder
    monkeypatch.setenv("DIGEST_SMTP_URL", url)
    result = run(capsys, "settings")
    assert result.code == 78
    assert result.err.count("\n") == 1 and "DIGEST_SMTP_URL" in result.err
    assert message in result.err


def test_ses_without_aws_credentials_stops_the_worker_with_one_line(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID"):
        transport_from_settings(make_settings(smtp_url="ses://eu-west-1"))


def test_service_secrets_are_redacted_in_settings(
    capsys: pytest.CaptureFixture[str],
    make_settings: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_settings()
    for url, secrets in [
        ("postmark://pm-token-not-shown@?webhook_secret=hook-secret-not-shown-0123456", 2),
        ("mailgun://key-not-shown@mg.example.com?webhook_secret=signing-key-not-shown", 2),
    ]:
        monkeypatch.setenv("DIGEST_SMTP_URL", url)
        result = run(capsys, "settings", "--json")
        assert result.code == 0, result.err
        value = {i["name"]: i["value"] for i in json.loads(result.out)}["DIGEST_SMTP_URL"]
        assert "not-shown" not in result.out
        assert value.count("***") == secrets
        assert parse_esp_url(url).service in value


def test_result_stage_of_an_unreachable_service_is_connect(
    make_settings: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = esp_url("mailgun", f"http://127.0.0.1:{free_port()}")
    result = asyncio.run(_send(make_settings(smtp_url=url), MESSAGE))
    assert result.code is None and result.stage is Stage.CONNECT
    assert result.classify().verdict.value == "defer"
