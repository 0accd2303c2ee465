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
from tests.support.web import client, make_app

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


def test_ses_notifications_through_sns_are_recorded_by_message_id(
    db: Database, esp_server: EspServer, make_settings: Callable[..., Any]
) -> None:
    settings, ids = sent(db, make_settings, esp_server, "ses")
    app = make_app(settings, db)

    def sns(message: dict[str, Any]) -> dict[str, Any]:
        return {"Type": "Notification", "MessageId": "m1", "Message": json.dumps(message)}

    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": "p0@example.org", "status": "5.1.1", "diagnosticCode": "550"}
            ],
        },
        "mail": {"commonHeaders": {"messageId": ids["p0@example.org"]}},
    }
    assert _post(app, "/esp/ses", sns(bounce)).status_code == 401
    answer = _post(app, "/esp/ses", sns(bounce), auth=("sns", SECRET))
    assert answer.status_code == 200 and answer.json()["recorded"]["hard"] == 1
    assert status_of(db, "p0@example.org") == ("bounced", "bounced")
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "p1@example.org"}]},
        "mail": {"commonHeaders": {"messageId": ids["p1@example.org"]}},
    }
    assert _post(app, "/esp/ses", sns(complaint), auth=("sns", SECRET)).status_code == 200
    assert status_of(db, "p1@example.org")[0] == "complained"
    confirm = {"Type": "SubscriptionConfirmation", "SubscribeURL": "https://sns.example/x"}
    confirmed = _post(app, "/esp/ses", confirm, auth=("sns", SECRET))
    assert confirmed.status_code == 200 and "SubscribeURL" in confirmed.json()["ignored"]
    assert _post(app, "/esp/ses", b"{not json", auth=("sns", SECRET)).status_code == 422


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
