"""What the email services' API transports share: the HTTP client and what a reply means.

``ses.py``, ``postmark.py`` and ``mailgun.py`` each turn a message into one HTTP request and
say which of a few ``Answer`` kinds the service's reply is; ``EspTransport`` sends the requests
over ``DIGEST_SMTP_CONNECTIONS`` kept-alive connections at once (as many as the worker's lanes)
and ``result_for`` maps each answer onto the SMTP-shaped ``Result`` the worker already
classifies (``replies.classify``), so an API reply and an SMTP reply with the same meaning end
the same way:

* accepted (2xx): sent;
* throttled (429, SES ``TooManyRequestsException``/``Throttling``): deferred, never bounced
  nor failed, and the worker's rate halves (``throttle.RateLimiter.slow_down``);
* unavailable (5xx, a timeout, no connection) and refused setup (bad credentials, sending
  paused, an unverified domain): deferred and counted by the breaker, as a relay that refuses
  digest's login is;
* invalid (any other 4xx: the request itself is wrong, sending it again changes nothing):
  failed;
* inactive (the service's suppression list holds the address, e.g. Postmark's ErrorCode 406):
  bounced, hard, as a 5.1.1 at RCPT.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp

from digest.delivery.replies import Stage
from digest.delivery.transport import Result
from digest.mail.headers import printable_line

MAX_DETAIL = 300  # characters of a service's error text kept in the reply


class Answer(StrEnum):
    """What a service's reply to one send request means."""

    ACCEPTED = "accepted"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    SETUP = "setup"
    INVALID = "invalid"
    INACTIVE = "inactive"


def answer_for_status(status: int) -> Answer:
    """The usual meaning of an HTTP status, before a service's own error codes refine it."""
    if 200 <= status < 300:
        return Answer.ACCEPTED
    if status == 429:
        return Answer.THROTTLED
    if status in (401, 403):
        return Answer.SETUP
    if 400 <= status < 500 and status not in (408, 409, 425):
        return Answer.INVALID
    return Answer.UNAVAILABLE


def result_for(service: str, answer: Answer, status: int, detail: str) -> Result:
    """The SMTP-shaped result of one API reply (see the module's docstring)."""
    text = printable_line(detail)[:MAX_DETAIL]
    said = f"{service} answered HTTP {status}: {text}".rstrip(": ")
    if answer is Answer.ACCEPTED:
        return Result(250, f"{service} accepted it: {text}".rstrip(": "), Stage.DATA)
    if answer is Answer.THROTTLED:
        # A 4xx at DATA: deferred, and not the breaker's business (the rate limiter's).
        return Result(450, f"4.7.0 {said}", Stage.DATA, throttled=True)
    if answer is Answer.SETUP:
        # Like a relay refusing AUTH: digest's setup, not this message; retried once fixed.
        return Result(451, f"4.7.0 {said}", Stage.CONNECT)
    if answer is Answer.INVALID:
        # Stage.LOCAL: the request digest made is wrong, so sending it again is pointless.
        return Result(554, f"5.6.0 {said}", Stage.LOCAL)
    if answer is Answer.INACTIVE:
        return Result(550, f"5.1.1 {said}", Stage.RCPT)
    return Result(451, f"4.3.0 {said}", Stage.DATA)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One POST to a service's API: its URL, headers and body."""

    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class ApiReply:
    """A service's reply: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body)


Build = Callable[[str, str, bytes], ApiRequest]
Judge = Callable[[ApiReply], tuple[Answer, str]]


class EspTransport:
    """Sends each message as one request to a service's API, many at a time, never raising.

    ``build`` turns (envelope sender, recipient, message) into the request (ValueError when the
    message cannot be sent that way); ``judge`` says what the reply means and its detail.

    aiohttp carries the requests, over one pool of ``connections`` kept-alive connections:
    httpx took 1 ms of CPU per request on this machine against 0.37 ms for aiohttp, too much
    to reach half the SMTP path's rate (docs/benchmarks.md, bench/esp_throughput.py).
    """

    def __init__(
        self,
        service: str,
        build: Build,
        judge: Judge,
        *,
        connections: int = 8,
        timeout: float = 30.0,
    ) -> None:
        self.service = service
        self.build = build
        self.judge = judge
        self.timeout = timeout
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made lazily: a session belongs to the event loop that first uses it.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(self, envelope_from: str, rcpt: str, data: bytes) -> Result:
        """POST one message; every failure becomes a Result, never an exception."""
        try:
            request = self.build(envelope_from, rcpt, data)
        except ValueError as exc:
            return Result(None, f"cannot send this through {self.service}: {exc}", Stage.LOCAL)
        try:
            reply = await self._post(request)
        except TimeoutError:
            # Like a connection lost after DATA: the service may have taken it; it goes again.
            text = f"{self.service} did not answer within {self.timeout:g} s"
            return Result(None, text, Stage.DATA)
        except aiohttp.ClientError as exc:
            text = f"cannot reach {self.service}: {type(exc).__name__} {exc}".strip()
            return Result(None, printable_line(text)[:MAX_DETAIL], Stage.CONNECT)
        answer, detail = self.judge(reply)
        return result_for(self.service, answer, reply.status, detail)

    async def _post(self, request: ApiRequest) -> ApiReply:
        session = self._client()
        async with session.post(request.url, data=request.body, headers=request.headers) as r:
            body = await r.read()
            headers = {k.lower(): v for k, v in r.headers.items()}
            return ApiReply(r.status, headers, body)

    async def close(self) -> None:
        """Close the kept-alive connections."""
        if self._session is not None:
            await self._session.close()


def json_field(reply: ApiReply, *names: str) -> str:
    """The first of ``names`` in a JSON reply's top level, as text ("" when absent)."""
    try:
        body = reply.json()
    except ValueError:
        return reply.body[:MAX_DETAIL].decode("utf-8", "replace")
    if not isinstance(body, dict):
        return ""
    for name in names:
        value = body.get(name)
        if value not in (None, ""):
            return str(value)
    return ""
