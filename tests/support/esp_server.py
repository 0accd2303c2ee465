"""A local stand-in for the email services' send APIs: SES v2, Postmark and Mailgun.

One ASGI app, run by uvicorn on a loopback port, answers each API's send request as its
documentation shows (request checked, reply shaped like the service's), records what it
received, and plays faults from a plan: ``throttle`` (429), ``error`` (5xx), ``hang`` (no
answer before the client's timeout), ``invalid`` (the 4xx of a bad request) and, for
Postmark, ``inactive`` (ErrorCode 406).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from tests.support.smtp_server import free_port

POSTMARK_TOKEN = "postmark-server-token-for-tests"
MAILGUN_KEY = "key-mailgun-for-tests"
AWS_KEY_ID = "AKIDEXAMPLETESTS"
AWS_SECRET = "aws-secret-key-for-the-tests-0123456789"
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/\d{8}/(?P<region>[a-z0-9-]+)/ses/"
    r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=[0-9a-f]{64}"
)


@dataclass
class Seen:
    """One request as the server received it, and what the message it carried is."""

    service: str
    path: str
    headers: dict[str, str]
    body: bytes
    rcpt: str = ""
    message: bytes = b""  # the raw MIME (SES, Mailgun)
    fields: dict[str, Any] = field(default_factory=dict)  # Postmark's JSON


def _multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    boundary = content_type.partition("boundary=")[2].strip('"').encode()
    parts = {}
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, value = chunk[2:].partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if name:
            parts[name.group(1).decode()] = value[:-2]  # the CRLF before the next boundary
    return parts


class FakeEsp:
    """The ASGI app: answers, records, and plays the planned faults in order."""

    def __init__(self, *, record: bool = True) -> None:
        self.seen: list[Seen] = []
        self.plan: deque[str] = deque()
        self.record = record
        self.hang_seconds = 5.0
        self.count = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rpartition(".")[2]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, reply, extra = await self.answer(scope["path"], headers, body)
        payload = json.dumps(reply).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
        """The status, JSON and extra headers of the reply to one request."""
        self.count += 1
        if path == "/v2/email/outbound-emails":
            seen = self._ses(path, headers, body)
        elif path == "/email":
            seen = self._postmark(path, headers, body)
        elif path.startswith("/v3/") and path.endswith("/messages.mime"):
            seen = self._mailgun(path, headers, body)
        else:
            return 404, {"message": "not found"}, []
        if isinstance(seen, tuple):
            return seen  # the request itself was wrong
        if self.record:
            self.seen.append(seen)
        fault = self.plan.popleft() if self.plan else ""
        if fault == "hang":
            await asyncio.sleep(self.hang_seconds)
        return _reply(seen.service, fault, seen.rcpt)

    def _ses(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        auth = _SIGV4.fullmatch(headers.get("authorization", ""))
        if not auth or auth["key"] != AWS_KEY_ID or "x-amz-date" not in headers:
            return 403, {"message": "The security token included in the request is invalid."}, []
        data = json.loads(body)
        message = base64.b64decode(data["Content"]["Raw"]["Data"], validate=True)
        rcpt = data["Destination"]["ToAddresses"][0]
        return Seen("ses", path, headers, body, rcpt=rcpt, message=message, fields=data)

    def _postmark(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        if headers.get("x-postmark-server-token") != POSTMARK_TOKEN:
            return 401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, []
        data = json.loads(body)
        if not data.get("From") or not data.get("To"):
            return 422, {"ErrorCode": 300, "Message": "Invalid email request"}, []
        return Seen("postmark", path, headers, body, rcpt=data["To"], fields=data)

    def _mailgun(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        expected = "Basic " + base64.b64encode(f"api:{MAILGUN_KEY}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"message": "Forbidden"}, []
        parts = _multipart(body, headers.get("content-type", ""))
        if "to" not in parts or "message" not in parts:
            return 400, {"message": "'to' parameter is missing"}, []
        rcpt = parts["to"].decode()
        return Seen("mailgun", path, headers, body, rcpt=rcpt, message=parts["message"])


def _reply(service: str, fault: str, rcpt: str) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
    if service == "ses":
        kinds = {
            "throttle": (429, "TooManyRequestsException", "Maximum sending rate exceeded."),
            "error": (500, "InternalServiceErrorException", "Internal error."),
            "invalid": (400, "BadRequestException", "Invalid Raw content."),
        }
        if fault in kinds:
            status, kind, text = kinds[fault]
            return status, {"message": text}, [(b"x-amzn-errortype", f"{kind}:".encode())]
        return 200, {"MessageId": f"0100{uuid.uuid4().hex}-000000"}, []
    if service == "postmark":
        errors = {
            "throttle": (429, 429, "Rate limit exceeded."),
            "error": (500, 0, "Internal server error."),
            "invalid": (422, 300, "Invalid email request."),
            "inactive": (
                422,
                406,
                "You tried to send to recipient(s) that have been marked as inactive. "
                f"Found inactive addresses: {rcpt}.",
            ),
        }
        if fault in errors:
            status, code, text = errors[fault]
            return status, {"ErrorCode": code, "Message": text}, []
        ok = {"To": rcpt, "SubmittedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ"), "ErrorCode": 0}
        return 200, {**ok, "MessageID": str(uuid.uuid4()), "Message": "OK"}, []
    statuses = {"throttle": 429, "error": 503, "invalid": 400}
    if fault in statuses:
        return statuses[fault], {"message": f"{fault} (test)"}, []
    return 200, {"id": f"<{uuid.uuid4().hex}@mg.example.com>", "message": "Queued. Thank you."}, []


@dataclass
class EspServer:
    """A running fake: its app and base URL."""

    app: FakeEsp
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        """Shut it down."""
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_esp_server(app: FakeEsp | None = None) -> EspServer:
    """Run the fake on a free loopback port in a thread, until ``stop()``."""
    app = app or FakeEsp()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake email service did not start")
        time.sleep(0.02)
    return EspServer(app, f"http://127.0.0.1:{port}", server, thread)


def esp_url(service: str, endpoint: str, **options: str) -> str:
    """DIGEST_SMTP_URL for ``service`` pointed at ``endpoint``."""
    query = "&".join(f"{k}={v}" for k, v in {"endpoint": endpoint, **options}.items())
    base = {
        "ses": "ses://eu-west-1",
        "postmark": f"postmark://{POSTMARK_TOKEN}@",
        "mailgun": f"mailgun://{MAILGUN_KEY}@mg.example.com",
    }[service]
    return f"{base}?{query}"


@pytest.fixture
def esp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EspServer]:
    """The fake email services, with AWS credentials in the environment for SES."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    server = start_esp_server()
    yield server
    server.stop()
