"""Reading the mail that comes back: delivery status notifications and spam complaints.

Most bounces do not happen while digest talks to its relay: the relay accepts the message and
learns later that the mailbox does not exist, then mails a delivery status notification (DSN,
RFC 3464; RFC 6533 for internationalised mail) to the envelope sender. Mailbox providers'
feedback loops send a complaint when a reader presses "this is spam" (ARF, RFC 5965). Both are
``multipart/report`` messages; this module turns one into a ``Report``, with no I/O, and never
raises on what it reads except NotAReport.

A report names the recipient (``Final-Recipient``, ``Original-Rcpt-To``) and usually quotes the
original message's headers, whose Message-ID digest made and stored with the delivery
(``bounces.py`` matches on it). Every digest goes to exactly one recipient, so one report
speaks for one address, however many a (forged) report lists. With VERP the address the report
came back to names the delivery too, quoted or not: the report keeps every VERP token it was
addressed to (``To``, ``Delivered-To``, ``X-Original-To``, Postfix's ``X-Postfix-Sender``, the
quoted ``Return-Path``), and ``bounces.py`` checks their signatures.

The input comes from strangers, so parsing is bounded: the message is cut at
``MAX_REPORT_BYTES``, parsed with the ``compat32`` policy (the modern header parser is far
worse than linear on long runs of encoded words), and each field is cut short and stripped of
control characters before anything looks at it.
"""

from __future__ import annotations

import base64
import email
import email.parser
import io
import quopri
import re
from dataclasses import dataclass, replace
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.utils import getaddresses
from enum import StrEnum

from digest.addresses import normalize_email
from digest.delivery.replies import is_hard_status
from digest.errors import DigestError, NotAReport
from digest.mail.headers import printable_line
from digest.mail.message_id import message_id_in
from digest.mail.verp import claimed_token

MAX_REPORT_BYTES = 512 * 1024  # a DSN quoting a whole digest is ~60 KB
MAX_FIELD = 1000  # characters of one field worth reading
_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_DELIVERY_STATUS = ("message/delivery-status", "message/global-delivery-status")
_QUOTED_HEADERS = ("text/rfc822-headers", "message/global-headers")
_QUOTED_MESSAGE = ("message/rfc822", "message/global")
# RFC 5965 feedback types that are a reader's complaint; "virus", "auth-failure" and
# "not-spam" are not, and "other" says nothing.
_COMPLAINTS = ("abuse", "fraud")
# Where the address a report was mailed to shows: the report's own headers (set by the MTAs
# that carried it back) and the envelope sender in the report's per-message fields.
_RETURNED_TO = ("To", "Delivered-To", "X-Original-To")
_MAX_CLAIMS = 8  # address fields read for VERP tokens; a genuine report has a handful


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
    original: str | None = None  # Original-Recipient, when a forward changed the final one
    verp_tokens: tuple[str, ...] = ()  # the VERP tokens it came back to, unchecked (verp.py)

    @property
    def acts(self) -> bool:
        """Whether the report asks for anything to change (a delay does not)."""
        return self.kind is not Kind.DELAYED

    def names(self, address: str) -> bool:
        """Whether the report is about ``address`` (or names no address at all)."""
        named = {a for a in (self.recipient, self.original) if a}
        return not named or address in named


def parse_report(raw: bytes) -> list[Report]:
    """The report in one message: the failed (else delayed) recipient of a DSN, or the
    complaint of an ARF report. NotAReport for anything else (an auto-reply, garbage)."""
    try:
        message = email.message_from_bytes(raw[:MAX_REPORT_BYTES], policy=policy.compat32)
        if message.get_content_type() != "multipart/report":
            raise NotAReport("the message is not a multipart/report (RFC 6522)")
        report_type = field_text(message.get_param("report-type", "")).lower()
        if report_type in ("delivery-status", "global-delivery-status"):
            report = _delivery_status(message)
        elif report_type == "feedback-report":
            report = _feedback(message)
        else:
            raise NotAReport(f"unknown report type {report_type[:40]!r}")
        report = replace(report, verp_tokens=_claims(message))
    except NotAReport:
        raise
    except Exception as exc:
        # Mail from strangers: whatever the parser trips on, the answer is "not a report".
        raise NotAReport(f"the message cannot be read as a report: {type(exc).__name__}") from None
    return [report]


def _delivery_status(message: Message) -> Report:
    part = _first(message, _DELIVERY_STATUS)
    if part is None:
        raise NotAReport("the delivery report has no message/delivery-status part")
    blocks = _blocks(part)
    per_message, per_recipient = (blocks[0], blocks[1:]) if blocks else (None, [])
    message_id = message_id_in(_quoted(message).get("Message-ID")) or (
        message_id_in(per_message.get("X-Original-Message-ID")) if per_message else None
    )
    found = []
    for block in per_recipient:
        action = field_text(block.get("Action")).lower()
        status = _status(block.get("Status"))
        if action not in ("failed", "delayed") or status is None:
            continue  # delivered, relayed, expanded: good news needs no action
        if action == "delayed":
            kind = Kind.DELAYED
        elif status.startswith("5") and is_hard_status(status):
            kind = Kind.HARD
        else:
            # "failed" is final (RFC 3464 2.3.3), even with a 4.x.x such as 4.4.7, "expired".
            kind = Kind.SOFT
        final = _address(block.get("Final-Recipient"))
        original = _address(block.get("Original-Recipient"))
        detail = field_text(block.get("Diagnostic-Code")).partition(";")[2].strip()
        found.append(Report(kind, final or original, message_id, status, detail, original=original))
    if not found:
        raise NotAReport("the report names no failed or delayed recipient")
    # Our messages each have one recipient: a genuine report is about one address.
    return next((r for r in found if r.acts), found[0])


def _feedback(message: Message) -> Report:
    part = _first(message, ("message/feedback-report",))
    blocks = _blocks(part) if part is not None else []
    fields = blocks[0] if blocks else None
    if fields is None:
        raise NotAReport("the feedback report has no message/feedback-report fields")
    feedback_type = field_text(fields.get("Feedback-Type")).lower()
    if feedback_type not in _COMPLAINTS:
        raise NotAReport(f"feedback type {feedback_type[:40]!r} is not a complaint")
    recipient = _address(fields.get("Original-Rcpt-To"))
    detail = field_text(fields.get("User-Agent"))
    message_id = message_id_in(_quoted(message).get("Message-ID"))
    return Report(Kind.COMPLAINT, recipient, message_id, feedback_type, detail)


def _first(message: Message, content_types: tuple[str, ...]) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() in content_types), None)


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part.

    Python splits ``message/delivery-status`` into its blocks. The RFC 6533 global types may be
    raw UTF-8 or base64 or quoted-printable, which Python's split does not undo, so their body
    is taken back as bytes, decoded, and split here on blank lines.
    """
    payload = part.get_payload()
    if part.get_content_type().startswith("message/global") or not isinstance(payload, list):
        return _split_blocks(_body_text(part))
    return [b for b in payload if isinstance(b, Message)]


def _body_text(part: Message) -> str:
    """A ``message/*`` part's body as text: re-serialised as it came, transfer-decoded, UTF-8."""
    payload = part.get_payload()
    if isinstance(payload, list):
        out = io.BytesIO()
        for inner in payload:
            if isinstance(inner, Message):
                BytesGenerator(out, mangle_from_=False, maxheaderlen=0).flatten(inner)
        raw = out.getvalue()
    else:
        raw = str(payload).encode("ascii", "surrogateescape")
    encoding = field_text(part.get("Content-Transfer-Encoding")).lower()
    if encoding == "base64":
        raw = base64.b64decode(b"".join(raw.split()), validate=False)
    elif encoding == "quoted-printable":
        raw = quopri.decodestring(raw)
    return raw[:MAX_REPORT_BYTES].decode("utf-8", "replace")


def _split_blocks(text: str) -> list[Message]:
    parser = email.parser.HeaderParser(policy=policy.compat32)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [parser.parsestr(chunk) for chunk in chunks if chunk.strip()]


def _quoted(message: Message) -> Message:
    """The original's headers, from the report's third part (headers or message); none quoted
    gives an empty set of headers."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in _QUOTED_HEADERS and kind not in _QUOTED_MESSAGE:
            continue
        inner = part.get_payload()
        encoded = field_text(part.get("Content-Transfer-Encoding")).lower()
        if isinstance(inner, list) and encoded not in ("base64", "quoted-printable"):
            if inner and isinstance(inner[0], Message):
                return inner[0]
        else:
            if isinstance(inner, list):
                text = _body_text(part)
            else:
                body = part.get_payload(decode=True)
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else ""
            head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0][:65536]
            return email.parser.HeaderParser(policy=policy.compat32).parsestr(head)
    return Message()


def _claims(message: Message) -> tuple[str, ...]:
    """The VERP tokens in the addresses the report was mailed back to, in order, unchecked."""
    fields: list[object] = [v for name in _RETURNED_TO for v in message.get_all(name) or []]
    status = _first(message, _DELIVERY_STATUS)
    blocks = _blocks(status) if status is not None else []
    if blocks:
        fields.append(blocks[0].get("X-Postfix-Sender"))
    fields.append(_quoted(message).get("Return-Path"))
    tokens: list[str] = []
    for value in fields[:_MAX_CLAIMS]:
        text = field_text(value)
        kind, semicolon, rest = text.partition(";")
        if semicolon and kind.strip().lower() in ("rfc822", "utf-8"):
            text = rest  # a DSN field's "rfc822; address"
        for _name, address in getaddresses([text]):
            token = claimed_token(address)
            if token is not None and token not in tokens:
                tokens.append(token)
    return tuple(tokens)


def field_text(value: object) -> str:
    """A field from a stranger as one line: cut short, control characters (NUL, escapes) gone."""
    if value is None:
        return ""
    return printable_line(str(value)[:MAX_FIELD])


def _status(value: object) -> str | None:
    match = _STATUS.match(field_text(value))
    return ".".join(match.groups()) if match else None


def _address(value: object) -> str | None:
    """``rfc822; Ann@Example.com``, ``utf-8; j\\x{E9}@x`` or ``<ann@x>``, normalised."""
    text = field_text(value)
    if ";" in text:
        address_type, _, text = text.partition(";")
        address_type = address_type.strip().lower()
        if address_type == "utf-8":
            text = _UTF8_ESCAPE.sub(lambda m: chr(min(int(m.group(1), 16), 0x10FFFF)), text)
        elif address_type != "rfc822":
            return None
    text = text.strip().strip("<>").strip()
    try:
        return normalize_email(text)
    except (DigestError, ValueError):
        return None
