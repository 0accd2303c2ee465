"""The Mailgun transport: each message sent as raw MIME through ``messages.mime``.

``POST /v3/{domain}/messages.mime`` as ``multipart/form-data`` with the fields ``to`` (the
recipient) and ``message`` (a file: the whole MIME message), HTTP Basic ``api:KEY``. Mailgun
sends the bytes digest built, so the Message-ID, List-Unsubscribe and a DKIM signature survive.
It answers 200 ``{"id": "<...>", "message": "Queued. Thank you."}``; 400 ``{"message": ...}``
for a request it refuses, 401/403 for a bad key or domain, 429 when sending too fast, 5xx when
it fails. Mailgun suppresses bounced addresses itself: it accepts such a message and reports it
later as a ``failed`` event, which the webhook (``web/esp_hooks.py``) records.
"""

from __future__ import annotations

import base64
import secrets

from digest.delivery.esp_http import (
    Answer,
    ApiReply,
    ApiRequest,
    EspTransport,
    answer_for_status,
    json_field,
)
from digest.delivery.esp_targets import EspTarget


def judge(response: ApiReply) -> tuple[Answer, str]:
    """What a Mailgun reply means, by its status."""
    detail = json_field(response, "message")
    if response.ok:
        detail = f"{json_field(response, 'id')} {detail}".strip()
    return answer_for_status(response.status), detail


def form(rcpt: str, data: bytes) -> tuple[bytes, str]:
    """The ``multipart/form-data`` body of one message and its Content-Type.

    Written by hand: the message is a few bytes joined around a 30 KB payload, and building it
    through a generic encoder per message costs more than the request itself.
    """
    boundary = secrets.token_hex(16)
    while boundary.encode() in data:  # a boundary must not occur in what it encloses
        boundary = secrets.token_hex(16)
    mark = b"--" + boundary.encode()
    if "\r" in rcpt or "\n" in rcpt:
        raise ValueError(f"{rcpt!r} is not one address")
    to = rcpt.encode("utf-8")
    body = b"".join(
        [
            mark + b'\r\nContent-Disposition: form-data; name="to"\r\n\r\n' + to + b"\r\n",
            mark + b'\r\nContent-Disposition: form-data; name="message"; '
            b'filename="message.mime"\r\nContent-Type: message/rfc822\r\n\r\n',
            data,
            b"\r\n" + mark + b"--\r\n",
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


def mailgun_transport(target: EspTarget, *, connections: int, timeout: float) -> EspTransport:
    """The Mailgun transport for ``target``."""
    url = f"{target.endpoint}/v3/{target.domain}/messages.mime"
    auth = "Basic " + base64.b64encode(f"api:{target.token}".encode()).decode("ascii")

    def build(envelope_from: str, rcpt: str, data: bytes) -> ApiRequest:
        # Mailgun's own return path gets the bounces; its webhook tells digest of them.
        body, content_type = form(rcpt, data)
        headers = {"Authorization": auth, "Content-Type": content_type}
        return ApiRequest(url, headers, body)

    return EspTransport("Mailgun", build, judge, connections=connections, timeout=timeout)
