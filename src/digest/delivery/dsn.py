"""Reading the mail that comes back: delivery status notifications and spam complaints.

Most bounces do not happen while digest talks to its relay: the relay accepts the message and
learns later that the mailbox does not exist, then mails a delivery status notification (DSN,
RFC 3464) to the envelope sender. Mailbox providers' feedback loops send a complaint when a
reader presses "this is spam" (ARF, RFC 5965). Both are ``multipart/report`` messages; this
module turns one into plain ``Report`` values, with no I/O, and never raises on what it reads.

A report names the recipient (``Final-Recipient``, ``Original-Rcpt-To``) and usually quotes the
original message's headers, whose Message-ID digest made and stored with the delivery; either
is enough to find whom it is about (``bounces.py``).
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum

from digest.addresses import normalize_email
from digest.delivery.retry import is_hard_status
from digest.errors import DigestError

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
MAX_REPORT_BYTES = 10 * 1024 * 1024  # a DSN quoting a whole digest is ~60 KB; this is plenty


class Kind(StrEnum):
    """What a report says happened."""

    HARD = "hard"  # the address does not exist: stop mailing it
    SOFT = "soft"  # this message failed for good (mailbox full, refused), the address may live
    DELAYED = "delayed"  # still being retried by the relay: nothing to do yet
    COMPLAINT = "complaint"  # the reader marked the mail as spam
    UNSUBSCRIBE = "unsubscribe"  # a mail to the List-Unsubscribe mailto (see inbound.py)


@dataclass(frozen=True, slots=True)
class Report:
    """One recipient's fate as a report tells it."""

    kind: Kind
    recipient: str | None  # normalised, when the report names a usable address
    message_id: str | None  # the original message's Message-ID, when quoted
    status: str  # the RFC 3463 status ("5.1.1") or the feedback type ("abuse")
    detail: str  # the server's diagnostic, one line
    token: str | None = None  # an unsubscribe request's signed token

    @property
    def acts(self) -> bool:
        """Whether the report asks for anything to change (a delay does not)."""
        return self.kind is not Kind.DELAYED


class NotAReport(DigestError):
    """The message is not a delivery status notification or a feedback report."""

    http_status = 422
    exit_code = 65


def parse_report(raw: bytes) -> list[Report]:
    """The reports in one message: one per failed or delayed recipient of a DSN, one for a
    complaint. NotAReport for anything else (an auto-reply, a reader's answer, garbage)."""
    if len(raw) > MAX_REPORT_BYTES:
        raise NotAReport(f"the message is over {MAX_REPORT_BYTES // (1024 * 1024)} MB")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        report_type = str(message.get_param("report-type", "")).lower()
        if message.get_content_type() != "multipart/report":
            raise NotAReport("the message is not a multipart/report (RFC 6522)")
        if report_type == "delivery-status":
            reports = _delivery_status(message)
        elif report_type == "feedback-report":
            reports = _feedback(message)
        else:
            raise NotAReport(f"unknown report type {report_type!r}")
    except NotAReport:
        raise
    except Exception as exc:
        raise NotAReport(f"the message cannot be read as a report: {type(exc).__name__}") from None
    if not reports:
        raise NotAReport("the report names no recipient")
    return reports


def _delivery_status(message: Message) -> list[Report]:
    part = _first(message, "message/delivery-status")
    if part is None:
        raise NotAReport("the delivery report has no message/delivery-status part")
    blocks = [b for b in part.get_payload() if isinstance(b, Message)]
    per_message, per_recipient = (blocks[0], blocks[1:]) if blocks else (None, [])
    message_id = _quoted_message_id(message) or (
        _message_id(per_message.get("X-Original-Message-ID")) if per_message else None
    )
    reports = []
    for block in per_recipient:
        action = _text(block.get("Action")).lower()
        status = _status(block.get("Status"))
        if action not in ("failed", "delayed") or status is None:
            continue  # delivered, relayed, expanded: good news needs no action
        if action == "delayed" or status.startswith("4"):
            kind = Kind.DELAYED
        else:
            kind = Kind.HARD if is_hard_status(status) else Kind.SOFT
        recipient = _address(block.get("Final-Recipient")) or _address(
            block.get("Original-Recipient")
        )
        detail = _text(block.get("Diagnostic-Code")).partition(";")[2].strip()
        reports.append(Report(kind, recipient, message_id, status, detail[:500]))
    return reports


def _feedback(message: Message) -> list[Report]:
    part = _first(message, "message/feedback-report")
    if part is None:
        raise NotAReport("the feedback report has no message/feedback-report part")
    fields = next((b for b in part.get_payload() if isinstance(b, Message)), None)
    if fields is None:
        raise NotAReport("the feedback report is empty")
    feedback_type = _text(fields.get("Feedback-Type")).lower() or "abuse"
    if feedback_type not in ("abuse", "fraud", "other", "virus"):
        # not-spam is a reader taking a mail *out* of spam; auth-failure is about DKIM/SPF.
        raise NotAReport(f"feedback type {feedback_type!r} is not a complaint")
    recipient = _address(fields.get("Original-Rcpt-To"))
    detail = _text(fields.get("User-Agent"))
    return [Report(Kind.COMPLAINT, recipient, _quoted_message_id(message), feedback_type, detail)]


def _first(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _quoted_message_id(message: Message) -> str | None:
    """The Message-ID of the original, from the report's third part (headers or message)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            original = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(original, Message):
                return _message_id(original.get("Message-ID"))
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            headers = email.parser.HeaderParser(policy=email.policy.default).parsestr(text)
            return _message_id(headers.get("Message-ID"))
    return None


def _text(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _status(value: object) -> str | None:
    match = _STATUS.match(_text(value))
    return ".".join(match.groups()) if match else None


def _message_id(value: object) -> str | None:
    match = _MESSAGE_ID.search(_text(value))
    return match.group(0) if match else None


def _address(value: object) -> str | None:
    """``rfc822; Ann@Example.com`` or ``<ann@example.com>`` as a normalised address."""
    text = _text(value)
    if ";" in text:
        address_type, _, text = text.partition(";")
        if address_type.strip().lower() not in ("rfc822", "utf-8"):
            return None
    text = text.strip().strip("<>").strip()
    try:
        return normalize_email(text)
    except DigestError:
        return None
