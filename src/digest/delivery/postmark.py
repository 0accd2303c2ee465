"""The Postmark transport: each message sent through Postmark's ``POST /email``.

Postmark's API takes a message as fields, not as raw MIME (it documents no raw endpoint):
``{"From", "To", "Subject", "TextBody", "HtmlBody", "ReplyTo", "Headers": [{"Name", "Value"}],
"MessageStream"}`` with the server token in ``X-Postmark-Server-Token``. So digest takes its
built message apart: the addresses, subject and both bodies go in their fields, and every other
header (Message-ID, List-Unsubscribe, List-Unsubscribe-Post, List-Id...) goes in ``Headers``
as it was. Postmark rebuilds the MIME and signs it with its own DKIM key; a DKIM signature
digest made cannot survive that, so it is left out.

Postmark answers 200 ``{"ErrorCode": 0, "MessageID": ...}``; 422 with an ``ErrorCode``
(406: the recipient is inactive, after a hard bounce, a complaint or a manual suppression);
401 for a bad token; 429 when sending too fast; 5xx when it fails.
"""

from __future__ import annotations

import binascii
import email.policy
import json
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from digest.delivery.esp_http import Answer, ApiReply, ApiRequest, EspTransport, answer_for_status
from digest.delivery.esp_targets import EspTarget

PATH = "/email"
INACTIVE_RECIPIENT = 406
_HEADERS = BytesHeaderParser(policy=email.policy.compat32)
# Postmark ErrorCodes that are digest's setup (token, sender signature, account), not the mail.
_SETUP_CODES = {10, 400, 401, 405, 412, 413}
# Headers Postmark has fields for, or makes itself when it rebuilds the message.
_OWN = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "dkim-signature",
}


def judge(response: ApiReply) -> tuple[Answer, str]:
    """What a Postmark reply means, by its ErrorCode and status."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("ErrorCode")
    message = str(body.get("Message") or "")
    detail = f"ErrorCode {code}: {message}" if code else str(body.get("MessageID") or message)
    if response.ok and not code:
        return Answer.ACCEPTED, detail
    if code == INACTIVE_RECIPIENT:
        return Answer.INACTIVE, detail
    if code in _SETUP_CODES:
        return Answer.SETUP, detail
    if code == 429:
        return Answer.THROTTLED, detail
    return answer_for_status(response.status), detail


def _text(value: str) -> str:
    # Unfolded, and encoded words (RFC 2047) back to text: Postmark's JSON takes Unicode.
    return str(make_header(decode_header(value.replace("\r\n", "").replace("\n", ""))))


def _decoded(head: Message, payload: bytes) -> str:
    encoding = str(head.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "quoted-printable":
        payload = binascii.a2b_qp(payload)
    elif encoding == "base64":
        payload = binascii.a2b_base64(payload)
    return payload.decode(head.get_content_charset() or "utf-8", "replace")


def _parts(message: Message, body: bytes) -> Iterator[tuple[Message, bytes]]:
    """The leaf parts of a message whose head is parsed and whose body is ``body``.

    Split with bytes operations: the email package's parser reads a 30 KB digest line by line,
    1 ms a message, more than sending it; nested multiparts are split the same way.
    """
    if not message.is_multipart() and message.get_content_maintype() != "multipart":
        yield message, body
        return
    boundary = message.get_boundary()
    if not boundary:
        return
    # A delimiter is CRLF "--" boundary; the first may open the body without its CRLF.
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, payload = chunk.partition(b"\r\n\r\n")
        part = _HEADERS.parsebytes(head.lstrip(b"\r\n") + b"\r\n\r\n")
        yield from _parts(part, payload)


def fields(rcpt: str, data: bytes, stream: str) -> dict[str, object]:
    """The JSON fields of the message ``data`` (ValueError when it has no From or body)."""
    if b"\r\n\r\n" not in data:  # digest writes CRLF; a message with bare LFs gets them
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    message = _HEADERS.parsebytes(head + b"\r\n\r\n")
    sender = message.get("From")
    if not sender:
        raise ValueError("the message has no From header")
    text = html = None
    for part, payload in _parts(message, body):
        kind = part.get_content_type()
        if kind == "text/plain" and text is None:
            text = _decoded(part, payload)
        elif kind == "text/html" and html is None:
            html = _decoded(part, payload)
    if text is None and html is None:
        raise ValueError("the message has no text or HTML body")
    to = _text(message.get("To", ""))
    if parseaddr(to)[1].lower() != rcpt.lower():
        to = rcpt  # the envelope's recipient is the one the worker was given
    out: dict[str, object] = {
        "From": _text(sender),
        "To": to,
        "Subject": _text(message.get("Subject", "")),
        "MessageStream": stream,
        "Headers": [
            {"Name": name, "Value": _text(str(value))}
            for name, value in message.items()
            if name.lower() not in _OWN
        ],
    }
    if text is not None:
        out["TextBody"] = text
    if html is not None:
        out["HtmlBody"] = html
    if message.get("Reply-To"):
        out["ReplyTo"] = _text(message["Reply-To"])
    return out


def postmark_transport(target: EspTarget, *, connections: int, timeout: float) -> EspTransport:
    """The Postmark transport for ``target``."""
    url = target.endpoint + PATH
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-Postmark-Server-Token": target.token,
    }

    def build(envelope_from: str, rcpt: str, data: bytes) -> ApiRequest:
        # Postmark handles bounces itself (its webhooks); the envelope sender is its own.
        body = json.dumps(fields(rcpt, data, target.stream)).encode()
        return ApiRequest(url, headers, body)

    return EspTransport("Postmark", build, judge, connections=connections, timeout=timeout)
