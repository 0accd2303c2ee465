"""What the email services' API transports share: the HTTP client and what a reply means.

``ses.py``, ``postmark.py`` and ``mailgun.py`` each turn a message into one HTTP request and
say which of a few ``Answer`` kinds the service's reply is; ``EspTransport`` sends the requests
over one ``httpx.AsyncClient`` (connections kept alive, up to ``DIGEST_SMTP_CONNECTIONS`` at
once, as many as the worker's lanes) and ``result_for`` maps each answer onto the SMTP-shaped
``Result`` the worker already classifies (``replies.classify``), so an API reply and an SMTP
reply with the same meaning end the same way:

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

import contextlib
from collections.abc import Callable
from enum import StrEnum

import httpx

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


Build = Callable[[str, str, bytes], httpx.Request]
Judge = Callable[[httpx.Response], tuple[Answer, str]]


class EspTransport:
    """Sends each message as one request to a service's API, many at a time, never raising.

    ``build`` turns (envelope sender, recipient, message) into the request (ValueError when the
    message cannot be sent that way); ``judge`` says what the reply means and its detail.
    """

    def __init__(
        self,
        service: str,
        build: Build,
        judge: Judge,
        *,
        connections: int = 8,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.service = service
        self.build = build
        self.judge = judge
        self.timeout = timeout
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def send(self, envelope_from: str, rcpt: str, data: bytes) -> Result:
        """POST one message; every failure becomes a Result, never an exception."""
        try:
            request = self.build(envelope_from, rcpt, data)
        except ValueError as exc:
            return Result(None, f"cannot send this through {self.service}: {exc}", Stage.LOCAL)
        try:
            response = await self.client.send(request)
        except httpx.TimeoutException:
            # Like a connection lost after DATA: the service may have taken it; it goes again.
            text = f"{self.service} did not answer within {self.timeout:g} s"
            return Result(None, text, Stage.DATA)
        except httpx.HTTPError as exc:
            text = f"cannot reach {self.service}: {type(exc).__name__} {exc}".strip()
            return Result(None, printable_line(text)[:MAX_DETAIL], Stage.CONNECT)
        answer, detail = self.judge(response)
        return result_for(self.service, answer, response.status_code, detail)

    async def close(self) -> None:
        """Close the kept-alive connections."""
        with contextlib.suppress(httpx.HTTPError):
            await self.client.aclose()


def json_field(response: httpx.Response, *names: str) -> str:
    """The first of ``names`` in a JSON reply's top level, as text ("" when absent)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_DETAIL]
    if not isinstance(body, dict):
        return ""
    for name in names:
        value = body.get(name)
        if value not in (None, ""):
            return str(value)
    return ""
