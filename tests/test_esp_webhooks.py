"""The email services' bounce and complaint webhooks: signed or with their credentials they are
recorded like any bounce; without, or forged, they change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from digest.config import Settings
from digest.db import Database
from digest.delivery.running import drain
from digest.models import Delivery
from tests.support.bounces import status_of
from tests.support.esp_server import EspServer, esp_url
from tests.support.outbox import add_subscribers, enqueue, make_edition
from tests.support.sns import TOPIC, FakeSns
from tests.support.web import JSON, client, make_app

D = Delivery.__table__
SECRET = "webhook-secret-0123456789-abcdefgh"
SIGNING_KEY = "mailgun-signing-key-for-tests"


def sent(
    db: Database, make_settings: Callable[..., Any], server: EspServer, service: str
) -> tuple[Settings, dict[str, str]]:
    """An edition sent to p0..p2@example.org through ``service``: settings and Message-IDs."""
    secret = SIGNING_KEY if service == "mailgun" else SECRET
    url = esp_url(service, server.url, webhook_secret=secret)
    settings = make_settings(database_url=db.url, smtp_url=url)
    add_subscribers(db, 3)
    edition_id, body_id = make_edition(db)
    enqueue(db, edition_id, body_id)
    assert drain(settings, db).sent == 3
    with db.transaction() as session:
        return settings, dict(session.execute(sa.select(D.c.to_email, D.c.message_id)).all())


def mailgun_post(event: dict[str, Any], key: str = SIGNING_KEY) -> dict[str, Any]:
    timestamp, token = "1764590000", "t" * 50
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def _post(app: Any, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with client(app) as http:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            return await http.post(path, content=content, **kwargs)

    return asyncio.run(go())


def test_mailgun_events_signed_with_the_key_are_recorded_and_forged_ones_are_not(
    db: Database, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings, ids = sent(db, make_settings, esp_server, "mailgun")
    app = make_app(settings, db)
    failed = {
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "p0@example.org",
        "message": {"headers": {"message-id": ids["p0@example.org"].strip("<>")}},
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "description": "no such user"},
    }
    forged = _post(app, "/esp/mailgun", mailgun_post(failed, key="someone-else"))
    assert forged.status_code == 401
    unsigned = _post(app, "/esp/mailgun", {"event-data": failed})
    assert unsigned.status_code == 401
    # A signature of characters no hex digest has is refused like any wrong one, not a 500.
    odd = mailgun_post(failed)
    odd["signature"]["signature"] = "é" * 64
    assert _post(app, "/esp/mailgun", odd).status_code == 401
    assert status_of(db, "p0@example.org") == ("active", "sent")

    answer = _post(app, "/esp/mailgun", mailgun_post(failed))
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"]["hard"] == 1
    assert status_of(db, "p0@example.org") == ("bounced", "bounced")
    complained = {"event": "complained", "recipient": "p1@example.org", "message": {}}
    assert _post(app, "/esp/mailgun", mailgun_post(complained)).status_code == 200
    assert status_of(db, "p1@example.org")[0] == "complained"
    delivered = {"event": "delivered", "recipient": "p2@example.org"}
    ignored = _post(app, "/esp/mailgun", mailgun_post(delivered))
    assert ignored.status_code == 200 and "ignored" in ignored.json()
    assert status_of(db, "p2@example.org") == ("active", "sent")


def test_postmark_needs_the_basic_credentials_of_its_webhook_url(
    db: Database, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings, _ = sent(db, make_settings, esp_server, "postmark")
    app = make_app(settings, db)
    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": "p0@example.org",
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account does not exist.",
    }
    anonymous = _post(app, "/esp/postmark", bounce)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert _post(app, "/esp/postmark", bounce, auth=("digest", "wrong" * 6)).status_code == 401
    assert status_of(db, "p0@example.org") == ("active", "sent")

    assert _post(app, "/esp/postmark", bounce, auth=("digest", SECRET)).status_code == 200
    assert status_of(db, "p0@example.org")[0] == "bounced"
    spam = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "p1@example.org"}
    assert _post(app, "/esp/postmark", spam, auth=("digest", SECRET)).status_code == 200
    assert status_of(db, "p1@example.org")[0] == "complained"


def _ses_bounce(message_id: str) -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": "p0@example.org", "status": "5.1.1", "diagnosticCode": "550"}
            ],
        },
        "mail": {"commonHeaders": {"messageId": message_id}},
    }


def test_ses_notifications_through_sns_are_recorded_by_message_id(
    db: Database, esp_server: EspServer, make_settings: Callable[..., Any], fake_sns: FakeSns
) -> None:
    settings, ids = sent(db, make_settings, esp_server, "ses")
    app = make_app(settings, db)
    app.state.sns_verifier = fake_sns.verifier()

    def sns(message: dict[str, Any]) -> dict[str, Any]:
        return fake_sns.sign(fake_sns.notification(json.dumps(message)))

    bounce = sns(_ses_bounce(ids["p0@example.org"]))
    assert _post(app, "/esp/ses", bounce).status_code == 401
    unsigned = {k: v for k, v in bounce.items() if k != "Signature"}
    refused = _post(app, "/esp/ses", unsigned, auth=("sns", SECRET), headers=JSON)
    assert refused.status_code == 403 and "signature" in refused.json()["error"]
    altered = {**bounce, "Message": bounce["Message"].replace("p0@", "p2@")}
    assert _post(app, "/esp/ses", altered, auth=("sns", SECRET)).status_code == 403
    assert status_of(db, "p2@example.org")[0] == "active"
    answer = _post(app, "/esp/ses", bounce, auth=("sns", SECRET))
    assert answer.status_code == 200 and answer.json()["recorded"]["hard"] == 1
    assert status_of(db, "p0@example.org") == ("bounced", "bounced")
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "p1@example.org"}]},
        "mail": {"commonHeaders": {"messageId": ids["p1@example.org"]}},
    }
    assert _post(app, "/esp/ses", sns(complaint), auth=("sns", SECRET)).status_code == 200
    assert status_of(db, "p1@example.org")[0] == "complained"
    assert _post(app, "/esp/ses", b"{not json", auth=("sns", SECRET)).status_code == 422
    assert _post(app, "/esp/ses", b"[1]", auth=("sns", SECRET)).status_code == 403


def _topic_app(db: Database, make_settings: Callable[..., Any], fake_sns: FakeSns) -> Any:
    """The app with ``ses://?sns_topic=TOPIC`` (no Basic credentials), trusting ``fake_sns``."""
    url = esp_url("ses", "http://x", sns_topic=TOPIC)
    app = make_app(make_settings(database_url=db.url, smtp_url=url), db)
    app.state.sns_verifier = fake_sns.verifier()
    return app


def test_sns_topic_alone_admits_signed_posts_of_that_topic_and_confirms_it(
    sqlite_db: Database, make_settings: Callable[..., Any], fake_sns: FakeSns
) -> None:
    app = _topic_app(sqlite_db, make_settings, fake_sns)
    forged = {**fake_sns.sign(fake_sns.confirmation()), "Token": "t2"}
    assert _post(app, "/esp/ses", forged).status_code == 403
    other_topic = fake_sns.sign(fake_sns.confirmation(TopicArn=TOPIC + "-theirs"))
    refused = _post(app, "/esp/ses", other_topic, headers=JSON)
    assert refused.status_code == 403 and "topic" in refused.json()["error"]
    assert fake_sns.confirmations_seen() == 0
    confirmed = _post(app, "/esp/ses", fake_sns.sign(fake_sns.confirmation()))
    assert confirmed.status_code == 200 and confirmed.json() == {
        "ignored": "subscription confirmed"
    }
    assert fake_sns.confirmations_seen() == 1
    stale = fake_sns.notification("{}", Timestamp="2020-01-01T00:00:00.000Z")
    assert _post(app, "/esp/ses", fake_sns.sign(stale)).status_code == 403
    ignored = _post(app, "/esp/ses", fake_sns.sign(fake_sns.notification('{"eventType": "Open"}')))
    assert ignored.status_code == 200 and "ignored" in ignored.json()


def test_an_unreachable_signing_certificate_is_a_503_for_sns_to_retry(
    sqlite_db: Database, make_settings: Callable[..., Any], fake_sns: FakeSns
) -> None:
    app = _topic_app(sqlite_db, make_settings, fake_sns)
    post = fake_sns.sign(fake_sns.notification("{}"))
    fake_sns.server.stop()
    answer = _post(app, "/esp/ses", post, headers=JSON)
    assert answer.status_code == 503 and "Traceback" not in answer.text


@pytest.mark.parametrize("service", ["ses", "postmark", "mailgun"])
def test_a_webhook_answers_only_for_the_configured_service_with_a_secret(
    service: str, sqlite_db: Database, make_settings: Callable[..., Any]
) -> None:
    without_secret = make_settings(
        database_url=sqlite_db.url, smtp_url=esp_url(service, "http://x")
    )
    other = "postmark" if service != "postmark" else "mailgun"
    with_other = make_settings(
        database_url=sqlite_db.url, smtp_url=esp_url(other, "http://x", webhook_secret=SECRET)
    )
    for settings in (without_secret, with_other):
        answer = _post(make_app(settings, sqlite_db), f"/esp/{service}", {}, auth=("u", SECRET))
        assert answer.status_code == 404
