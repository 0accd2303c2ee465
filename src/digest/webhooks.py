"""The webhooks an operator sets up: adding one (its URL checked against the SSRF guard, its
signing secret made), listing them with their queues, removing one, and sending a test event.

The faces (``cli/webhooks.py``) parse and print; the rules are here. The secret is shown once,
when the webhook is added, and never listed again (it signs every POST: whoever reads it can
forge events).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session, col, select

from digest import webhook_queue
from digest import webhook_rules as rules
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import DigestError, FeedError, InvalidInput, WebhookNotFound
from digest.mail.headers import printable_line
from digest.models_engagement import Webhook
from digest.posts.fetch import check_url
from digest.webhook_sender import client_for, failure, policy_for, post

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class Listed:
    """A webhook as ``list`` shows it: never its secret."""

    id: int
    url: str
    events: list[str]
    queue: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TestAnswer:
    """What the receiver said to a test event: its status (None: no answer) and a line."""

    status: int | None
    line: str

    @property
    def ok(self) -> bool:
        """Whether it answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_target(url: str, settings: Settings) -> str:
    """The URL, cleaned, if webhooks may POST to it: http(s), and every address its host
    resolves to (if it resolves now) public unless DIGEST_ALLOW_PRIVATE_WEBHOOKS;
    InvalidInput saying why not.

    Checked again at every connection (the name may point elsewhere by then).
    """
    policy = policy_for(settings)
    try:
        parsed = check_url(url, policy, "webhook")
        host = parsed.host
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        # A name that does not resolve from here now (a receiver not set up yet, a split
        # horizon) is taken: every connection checks the address it reaches anyway.
        for info in _addresses(host, port):
            policy.check(str(info[4][0]), host)
    except FeedError as exc:
        raise InvalidInput(str(exc)) from None
    return str(parsed)


def _addresses(host: str, port: int) -> list[Any]:
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []


def resolves(url: str) -> bool:
    """Whether the URL's host resolves from here now (for a note when adding one)."""
    parsed = urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return bool(parsed.hostname) and bool(_addresses(parsed.hostname or "", port))


def add(session: Session, settings: Settings, url: str, events: str) -> tuple[Webhook, str]:
    """Add a webhook for ``events`` ("E1,E2"); the row and its secret (shown this once)."""
    try:
        wanted = rules.parse_events(events)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    target = check_target(url, settings)
    secret = new_secret()
    row = Webhook(url=target, events=wanted, secret=secret, created_at=utcnow())
    session.add(row)
    session.flush()
    return row, secret


def get(session: Session, webhook_id: int) -> Webhook:
    """The webhook with this id, or WebhookNotFound."""
    row = session.get(Webhook, webhook_id)
    if row is None:
        raise WebhookNotFound(f"no webhook #{webhook_id} (see `digest webhooks list`)")
    return row


def listed(session: Session) -> list[Listed]:
    """Every webhook, by id, with its queue by state."""
    queues = webhook_queue.counts_by_webhook(session)
    rows = session.exec(select(Webhook).order_by(col(Webhook.id))).all()
    zero = dict.fromkeys((rules.QUEUED, rules.DELIVERED, rules.DEAD), 0)
    return [
        Listed(int(r.id or 0), r.url, list(r.events), zero | queues.get(int(r.id or 0), {}))
        for r in rows
    ]


def remove(session: Session, webhook_id: int) -> Webhook:
    """Remove a webhook and its queue (nothing more is sent to it); the row removed."""
    row = get(session, webhook_id)
    session.delete(row)
    session.flush()
    return row


def test_body(webhook_id: int) -> str:
    """The body of a test event: type ``webhook.test``, which no webhook subscribes to."""
    event_id = uuid.uuid4().hex
    return rules.body(event_id, rules.TEST_EVENT, utcnow(), {"webhook_id": webhook_id})


async def send_test(settings: Settings, row: Webhook) -> TestAnswer:
    """POST a signed test event to the webhook now (not queued); what the receiver said."""
    client = client_for(settings)
    try:
        t = int(utcnow().timestamp())
        body = test_body(int(row.id or 0))
        answer = await post(client, row.url, body, row.secret, t, settings.webhook_timeout)
    except (OSError, TimeoutError, httpx.HTTPError, DigestError) as exc:
        return TestAnswer(None, failure(exc))
    finally:
        await client.aclose()
    text = printable_line(answer.text[:200]) if answer.text else ""
    line = f"{answer.status_code} {answer.reason_phrase} {text}".strip()
    return TestAnswer(answer.status_code, line)


def run_test(settings: Settings, row: Webhook) -> TestAnswer:
    """``send_test`` from synchronous code (the CLI)."""
    return asyncio.run(send_test(settings, row))
