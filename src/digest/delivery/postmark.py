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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from functools import lru_cache

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


# A header line that starts a field: a name of printable ASCII but ":", then ":".
_FIELD = re.compile(rb"[!-9;-~]+:")


@dataclass(frozen=True, slots=True)
class Head:
    """A message's header fields in order, read as the email package's compat32 policy does."""

    fields: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first field called ``name`` (any case), else ``default``."""
        wanted = name.lower()
        for field_name, value in self.fields:
            if field_name.lower() == wanted:
                return value
        return default


def read_head(head: bytes) -> Head:
    """The fields of a header block (no blank line); pure.

    Digest's heads are ASCII with CRLF and folded lines, and are split here with bytes
    operations, a fifth of the email package's time; anything else goes to the email package.
    """
    lines = head.split(b"\r\n")
    bare = head.replace(b"\r\n", b"")  # a lone CR or LF also ends a line for the email package
    if head.isascii() and b"\r" not in bare and b"\n" not in bare and _FIELD.match(lines[0]):
        fields: list[tuple[str, str]] = []
        for line in lines:
            if line[:1] in (b" ", b"\t"):
                name, value = fields[-1]
                fields[-1] = (name, value + "\r\n" + line.decode())
            elif _FIELD.match(line):
                name, _, value = line.decode().partition(":")
                fields.append((name, value.lstrip(" \t")))
            else:
                break  # not a header line: let the email package decide what it is
        else:
            return Head(tuple(fields))
    parsed = _HEADERS.parsebytes(head + b"\r\n\r\n")
    return Head(tuple((name, str(value)) for name, value in parsed.items()))


def _text(value: str) -> str:
    # Unfolded, and encoded words (RFC 2047) back to text: Postmark's JSON takes Unicode. A
    # plain ASCII value without "=?" has no encoded word; the email package would return it
    # as it is, at a tenth of a message's build.
    value = value.replace("\r\n", "").replace("\n", "")
    if value.isascii() and "=?" not in value:
        return value
    return str(make_header(decode_header(value)))


@dataclass(frozen=True, slots=True)
class _Shape:
    """What ``fields`` needs of a part's head: its type, charset, encoding and boundary."""

    kind: str  # "text/plain", "multipart/alternative"...
    charset: str
    encoding: str  # Content-Transfer-Encoding, lower case
    boundary: str | None

    @classmethod
    def of(cls, head: Message) -> _Shape:
        """The shape a parsed head describes."""
        return cls(
            head.get_content_type(),
            head.get_content_charset() or "utf-8",
            str(head.get("Content-Transfer-Encoding", "")).strip().lower(),
            head.get_boundary(),
        )


@lru_cache(maxsize=64)
def _part_shape(head: bytes) -> _Shape:
    # Every reader's copy of a digest has the same part heads (the boundary is the body's):
    # parsed once per body, not once per reader.
    return _Shape.of(_HEADERS.parsebytes(head + b"\r\n\r\n"))


@lru_cache(maxsize=64)
def _top_shape(content_type: str | None, encoding: str | None) -> _Shape:
    # The same for every reader of one body, like the part heads.
    head = Message()
    if content_type is not None:
        head["Content-Type"] = content_type
    if encoding is not None:
        head["Content-Transfer-Encoding"] = encoding
    return _Shape.of(head)


def _shape(message: Head) -> _Shape:
    content_type, encoding = message.get("Content-Type"), message.get("Content-Transfer-Encoding")
    return _top_shape(
        None if content_type is None else str(content_type),
        None if encoding is None else str(encoding),
    )


def _decoded(shape: _Shape, payload: bytes) -> str:
    if shape.encoding == "quoted-printable":
        payload = binascii.a2b_qp(payload)
    elif shape.encoding == "base64":
        payload = binascii.a2b_base64(payload)
    return payload.decode(shape.charset, "replace")


def _parts(shape: _Shape, body: bytes) -> Iterator[tuple[_Shape, bytes]]:
    """The leaf parts of a message (or part) of ``shape`` whose body is ``body``.

    Split with bytes operations: the email package's parser reads a 30 KB digest line by line,
    1 ms a message, more than sending it; nested multiparts are split the same way.
    """
    if not shape.kind.startswith("multipart/"):
        yield shape, body
        return
    if not shape.boundary:
        return
    # A delimiter is CRLF "--" boundary; the first may open the body without its CRLF.
    for chunk in (b"\r\n" + body).split(b"\r\n--" + shape.boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, _, payload = chunk.partition(b"\r\n\r\n")
        yield from _parts(_part_shape(head.lstrip(b"\r\n")), payload)


def fields(rcpt: str, data: bytes, stream: str) -> dict[str, object]:
    """The JSON fields of the message ``data`` (ValueError when it has no From or body)."""
    if b"\r\n\r\n" not in data:  # digest writes CRLF; a message with bare LFs gets them
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    message = read_head(head)
    sender = message.get("From")
    if not sender:
        raise ValueError("the message has no From header")
    text = html = None
    for part, payload in _parts(_shape(message), body):
        if part.kind == "text/plain" and text is None:
            text = _decoded(part, payload)
        elif part.kind == "text/html" and html is None:
            html = _decoded(part, payload)
    if text is None and html is None:
        raise ValueError("the message has no text or HTML body")
    to = _text(message.get("To") or "")
    if parseaddr(to)[1].lower() != rcpt.lower():
        to = rcpt  # the envelope's recipient is the one the worker was given
    out: dict[str, object] = {
        "From": _text(sender),
        "To": to,
        "Subject": _text(message.get("Subject") or ""),
        "MessageStream": stream,
        "Headers": [
            {"Name": name, "Value": _text(value)}
            for name, value in message.fields
            if name.lower() not in _OWN
        ],
    }
    if text is not None:
        out["TextBody"] = text
    if html is not None:
        out["HtmlBody"] = html
    reply_to = message.get("Reply-To")
    if reply_to:
        out["ReplyTo"] = _text(reply_to)
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
