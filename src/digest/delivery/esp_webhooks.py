"""Receiving an email service's bounce and complaint webhook: the use case behind its route.

The route (``web/esp_hooks.py``) hands over the post's bytes and the password of its HTTP Basic
credentials; this checks that the post comes from the service ``DIGEST_SMTP_URL`` names (its
``webhook_secret``: the Basic password for SES and Postmark, Mailgun's signing key), reads its
reports (``esp_events.py``) and records them as the admin API's events are recorded: an
authenticated service may name just an address (``bounces.record_reports(trusted=True)``).
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from digest.config import Settings
from digest.db import Database
from digest.delivery.bounces import record_reports
from digest.delivery.dsn import Report
from digest.delivery.esp_events import (
    mailgun_reports,
    mailgun_signed,
    postmark_reports,
    ses_reports,
    sns_notification,
)
from digest.delivery.esp_targets import EspTarget, is_esp_url, parse_esp_url
from digest.errors import InvalidInput, NotAReport, NotFound, WebhookRefused
from digest.mail.headers import printable_line

log = logging.getLogger(__name__)
MAX_POST_BYTES = 1_000_000  # an SES notification with 50 recipients and headers is ~30 KB


@dataclass(frozen=True)
class WebhookAnswer:
    """What became of one post: the tally of what was recorded, or why nothing was."""

    recorded: dict[str, int] | None = None
    ignored: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the JSON answer."""
        if self.recorded is None:
            return {"ignored": self.ignored}
        return {"recorded": self.recorded}


def _target(settings: Settings, service: str) -> EspTarget:
    target = parse_esp_url(settings.smtp_url) if is_esp_url(settings.smtp_url) else None
    if target is None or target.service != service or not target.webhook_secret:
        # Only the service mail goes through, and only with a secret, has a webhook.
        raise NotFound("There is no page at this address.")
    return target


def receive_esp_post(
    db: Database, settings: Settings, service: str, raw: bytes, *, password: str | None
) -> WebhookAnswer:
    """Check, read and record one webhook post of ``service`` (ses, postmark, mailgun)."""
    target = _target(settings, service)
    if service != "mailgun" and not (
        password and hmac.compare_digest(password.encode(), target.webhook_secret.encode())
    ):
        raise WebhookRefused(
            f"{service} webhooks need the Basic credentials of the URL given to {service}"
        )
    if len(raw) > MAX_POST_BYTES:
        raise InvalidInput(f"a webhook post holds at most {MAX_POST_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if service == "mailgun" and not mailgun_signed(
        body.get("signature") if isinstance(body, dict) else None, target.webhook_secret
    ):
        raise WebhookRefused("the Mailgun signature does not match the webhook signing key")
    try:
        reports = _reports(service, body)
    except NotAReport as exc:
        # Answered 200: a service resends what it was refused, and this will never change.
        return WebhookAnswer(ignored=str(exc))
    with db.transaction() as session:
        tally = record_reports(session, reports, settings, trusted=True)
    return WebhookAnswer(recorded=tally.as_dict())


def _reports(service: str, body: Any) -> list[Report]:
    if service == "mailgun":
        return mailgun_reports(body)
    if service == "postmark":
        return postmark_reports(body)
    if isinstance(body, dict) and body.get("Type") == "SubscriptionConfirmation":
        # Confirming means fetching a URL from the post; the operator does it, not the server.
        url = printable_line(str(body.get("SubscribeURL", "")))[:2000]
        log.warning("SNS asks to confirm the subscription of the SES webhook: open %s", url)
        raise NotAReport("subscription confirmation: open the SubscribeURL (see the log)")
    return ses_reports(sns_notification(body))
