"""The email services' bounce and complaint webhooks: checking who sent one, and its reports.

Each service posts JSON of its own shape; this module turns one post into ``dsn.Report`` values,
which ``bounces.record_reports`` applies as it does the admin API's events (``web/esp_hooks.py``
is the face). Pure: no I/O, and never raises on what it reads but ``NotAReport``.

* SES, through an SNS subscription: ``{"Type": "Notification", "Message": "<JSON>"}``, the
  inner JSON ``{"notificationType" | "eventType": "Bounce" | "Complaint", "bounce":
  {"bounceType": "Permanent" | "Transient" | "Undetermined", "bouncedRecipients":
  [{"emailAddress", "status", "diagnosticCode"}]}, "complaint": {"complainedRecipients":
  [...]}, "mail": {"commonHeaders": {"messageId"}, "headers": [{"name", "value"}]}}``.
* Postmark: ``{"RecordType": "Bounce", "Type": "HardBounce" | ..., "Email", "Details"}`` or
  ``{"RecordType": "SpamComplaint", "Email"}``; its ``MessageID`` is Postmark's, not digest's.
* Mailgun: ``{"signature": {"timestamp", "token", "signature"}, "event-data": {"event":
  "failed" | "complained", "severity": "permanent" | "temporary", "reason", "recipient",
  "message": {"headers": {"message-id"}}, "delivery-status": {"code", "enhanced-code",
  "description", "message"}}}``.

Authenticity: Mailgun signs each post (HMAC-SHA256 of timestamp + token with the webhook
signing key: ``mailgun_signed``); SES (SNS) and Postmark carry HTTP Basic credentials put in
the webhook's URL, as both document, checked by the face.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from digest.addresses import normalize_email
from digest.delivery.dsn import Kind, Report, field_text
from digest.delivery.replies import is_hard_status
from digest.errors import DigestError, NotAReport
from digest.mail.message_id import message_id_in

MAX_RECIPIENTS = 50  # an SES notification lists at most 50 recipients
# Postmark bounce types (its "Type" field) by what they mean for the address.
_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}
_POSTMARK_SOFT = {"SoftBounce", "Blocked", "SpamNotification", "DMARCPolicy", "VirusNotification"}
_POSTMARK_DELAYED = {"Transient", "DnsError"}


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _recipient(value: Any) -> str | None:
    try:
        return normalize_email(field_text(value)) if value else None
    except DigestError:
        return None


def _message_id(value: Any) -> str | None:
    text = field_text(value)
    if text and not text.startswith("<"):
        text = f"<{text}>"  # Mailgun and SES give it without its angle brackets
    return message_id_in(text)


def mailgun_signed(signature: Any, key: str) -> bool:
    """Whether a Mailgun post's ``signature`` object was made with the webhook signing ``key``."""
    sig = _dict(signature)
    timestamp, token, given = (str(sig.get(k, "")) for k in ("timestamp", "token", "signature"))
    if not (timestamp and token and given and key):
        return False
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    # As bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, a 500).
    return hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "replace"))


def mailgun_reports(body: Any) -> list[Report]:
    """The report in one Mailgun event (``failed`` or ``complained``)."""
    event = _dict(_dict(body).get("event-data"))
    kind = field_text(event.get("event")).lower()
    recipient = _recipient(event.get("recipient"))
    headers = _dict(_dict(event.get("message")).get("headers"))
    message_id = _message_id(headers.get("message-id"))
    status = _dict(event.get("delivery-status"))
    detail = field_text(status.get("description") or status.get("message") or event.get("reason"))
    if kind == "complained":
        return [Report(Kind.COMPLAINT, recipient, message_id, "abuse", detail[:500])]
    if kind != "failed":
        raise NotAReport(f"a Mailgun {kind or 'unknown'} event is not a bounce or complaint")
    if field_text(event.get("severity")).lower() != "permanent":
        return [Report(Kind.DELAYED, recipient, message_id, "4.0.0", detail[:500])]
    enhanced = field_text(status.get("enhanced-code")) or f"{field_text(status.get('code'))}"
    # "suppress-bounce": Mailgun dropped it because the address bounced hard before.
    hard = is_hard_status(enhanced) or event.get("reason") == "suppress-bounce"
    kind_ = Kind.HARD if hard else Kind.SOFT
    return [Report(kind_, recipient, message_id, enhanced or "5.0.0", detail[:500])]


def postmark_reports(body: Any) -> list[Report]:
    """The report in one Postmark bounce or spam-complaint post."""
    post = _dict(body)
    record = field_text(post.get("RecordType"))
    recipient = _recipient(post.get("Email"))
    detail = field_text(post.get("Details") or post.get("Description"))[:500]
    kind = field_text(post.get("Type"))
    if record == "SpamComplaint" or kind == "SpamComplaint":
        return [Report(Kind.COMPLAINT, recipient, None, "abuse", detail)]
    if record != "Bounce":
        raise NotAReport(f"a Postmark {record or 'unknown'} post is not a bounce or complaint")
    if kind in _POSTMARK_HARD:
        return [Report(Kind.HARD, recipient, None, "5.1.1", f"{kind}: {detail}")]
    if kind in _POSTMARK_SOFT:
        return [Report(Kind.SOFT, recipient, None, "5.0.0", f"{kind}: {detail}")]
    if kind in _POSTMARK_DELAYED:
        return [Report(Kind.DELAYED, recipient, None, "4.0.0", f"{kind}: {detail}")]
    raise NotAReport(f"a Postmark {kind or 'unknown'} bounce asks for nothing")


def sns_notification(body: Any) -> Mapping[str, Any]:
    """The SES notification an SNS ``Notification`` post carries."""
    post = _dict(body)
    if post.get("Type") != "Notification":
        raise NotAReport(f"an SNS {field_text(post.get('Type')) or 'unknown'} post")
    try:
        return _dict(json.loads(str(post.get("Message", ""))))
    except ValueError:
        raise NotAReport("the SNS Message is not JSON") from None


def ses_reports(notification: Mapping[str, Any]) -> list[Report]:
    """The reports of one SES bounce or complaint notification, one per recipient."""
    kind = field_text(notification.get("notificationType") or notification.get("eventType"))
    mail = _dict(notification.get("mail"))
    message_id = _message_id(_dict(mail.get("commonHeaders")).get("messageId"))
    if message_id is None:
        for header in mail.get("headers") or []:
            if field_text(_dict(header).get("name")).lower() == "message-id":
                message_id = _message_id(_dict(header).get("value"))
    if kind == "Complaint":
        complaint = _dict(notification.get("complaint"))
        people = complaint.get("complainedRecipients") or []
        return [
            Report(
                Kind.COMPLAINT, _recipient(_dict(p).get("emailAddress")), message_id, "abuse", ""
            )
            for p in people[:MAX_RECIPIENTS]
        ]
    if kind != "Bounce":
        raise NotAReport(f"an SES {kind or 'unknown'} notification is not a bounce or complaint")
    bounce = _dict(notification.get("bounce"))
    permanent = bounce.get("bounceType") == "Permanent"
    reports = []
    for person in (bounce.get("bouncedRecipients") or [])[:MAX_RECIPIENTS]:
        p = _dict(person)
        status = field_text(p.get("status")) or ("5.0.0" if permanent else "4.0.0")
        detail = field_text(p.get("diagnosticCode") or bounce.get("bounceSubType"))[:500]
        # SES: "Permanent" means remove the address from the list; "Transient" and
        # "Undetermined" (mailbox full, message too large) are this message's failure.
        kind_ = Kind.HARD if permanent else Kind.SOFT
        reports.append(Report(kind_, _recipient(p.get("emailAddress")), message_id, status, detail))
    return reports
