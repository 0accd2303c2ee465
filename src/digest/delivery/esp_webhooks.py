"""Receiving an email service's bounce and complaint webhook: the use case behind its route.

The route (``web/esp_hooks.py``) hands over the post's bytes and the password of its HTTP Basic
credentials; this checks that the post comes from the service ``DIGEST_SMTP_URL`` names (its
``webhook_secret``: the Basic password for SES and Postmark, Mailgun's signing key; for SES
also the SNS signature of every post, and its topic when ``sns_topic`` is set), reads its
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
from digest.delivery.sns import SnsVerifier
from digest.errors import InvalidInput, NotAReport, NotFound, SignatureRefused, WebhookRefused

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
    if (
        target is None
        or target.service != service
        or not (target.webhook_secret or target.sns_topic)
    ):
        # Only the service mail goes through, and only with a secret, has a webhook.
        raise NotFound("There is no page at this address.")
    return target


def receive_esp_post(
    db: Database,
    settings: Settings,
    service: str,
    raw: bytes,
    *,
    password: str | None,
    sns: SnsVerifier | None = None,
) -> WebhookAnswer:
    """Check, read and record one webhook post of ``service`` (ses, postmark, mailgun).

    ``sns`` checks the signatures of SES's posts (a default one when not given)."""
    target = _target(settings, service)
    if (
        target.webhook_secret
        and service != "mailgun"
        and not (
            password and hmac.compare_digest(password.encode(), target.webhook_secret.encode())
        )
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
    if service == "ses":
        answer = _sns_checked(target, body, sns or SnsVerifier())
        if answer is not None:
            return answer
    try:
        reports = _reports(service, body)
    except NotAReport as exc:
        # Answered 200: a service resends what it was refused, and this will never change.
        return WebhookAnswer(ignored=str(exc))
    with db.transaction() as session:
        tally = record_reports(session, reports, settings, trusted=True)
    return WebhookAnswer(recorded=tally.as_dict())


def _sns_checked(target: EspTarget, body: Any, sns: SnsVerifier) -> WebhookAnswer | None:
    """Verify an SNS post; the answer to a confirmation, or None for a notification."""
    if not isinstance(body, dict):
        raise SignatureRefused("an SNS post is a JSON object")
    sns.verify(body)
    if target.sns_topic and body.get("TopicArn") != target.sns_topic:
        # Signed by SNS, but for someone else's topic that anyone may subscribe us to.
        raise SignatureRefused("the post is for another SNS topic than sns_topic names")
    kind = body.get("Type")
    if kind == "SubscriptionConfirmation":
        sns.confirm(body)
        log.info("confirmed the SNS subscription to %s", target.sns_topic or body["TopicArn"])
        return WebhookAnswer(ignored="subscription confirmed")
    if kind == "UnsubscribeConfirmation":
        return WebhookAnswer(ignored="an unsubscribe confirmation changes nothing here")
    return None


def _reports(service: str, body: Any) -> list[Report]:
    if service == "mailgun":
        return mailgun_reports(body)
    if service == "postmark":
        return postmark_reports(body)
    return ses_reports(sns_notification(body))
