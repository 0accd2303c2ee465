"""One digest outside any edition: what a subscriber would get now (``digest preview``), and a
copy marked as a test for an editor's own address (``digest send --test``).

Both use the same selection and history as an edition (``planning.selection_for``); neither
takes a subscriber's period, so neither changes what the next edition sends. A test copy is
sent at once, tried once, and never enters the outbox: an editor waiting for it must hear
"refused" or "unreachable" now, not find it delivered hours later by a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from digest import links
from digest.addresses import normalize_email
from digest.compose.render import DigestRenderer
from digest.config import Settings
from digest.db import Database
from digest.delivery.replies import Verdict
from digest.delivery.transport import Result
from digest.errors import NothingToSend, TestNotSent
from digest.mail.message import PREFERENCES_URL, UNSUBSCRIBE_URL, Personal, Sender, assemble
from digest.mail.message_id import new_message_id
from digest.models import Subscriber
from digest.planning import selection_for
from digest.states import Cadence
from digest.subscribers import find, get

#: Who a preview is addressed to when no subscriber is named.
SAMPLE_ADDRESS = "reader@example.com"
SAMPLE_NAME = "Reader"


@dataclass(frozen=True)
class Preview:
    """A subscriber's digest as it would be sent now, or why there is none."""

    who: str  # the subscriber's address, or "a new subscriber"
    posts: int
    reason: str  # why there is no digest, when ``message`` is None
    message: bytes | None  # the whole message, exactly as it would be sent


@dataclass(frozen=True)
class TestSent:
    """A test copy the mail server took: to whom, how many posts, and what the server said."""

    address: str
    posts: int
    reply: str


def _personal_links(settings: Settings, subscriber: Subscriber | None) -> tuple[str, str]:
    """(unsubscribe, preferences) links of ``subscriber``; a stranger gets the site's home."""
    if subscriber is None or subscriber.id is None:
        home = settings.base_url + "/"
        return home, home
    return (
        links.unsubscribe_url(settings, subscriber.id, subscriber.email),
        links.preferences_url(settings, subscriber.id, subscriber.email),
    )


def preview(
    db: Database, settings: Settings, *, address: str | None, cadence: str | None, now: datetime
) -> Preview:
    """The digest the subscriber at ``address`` (or a new reader of every topic) would get now.

    Raises ``SubscriberNotFound`` for an address that is not on the list; writes nothing.
    """
    with db.transaction() as session:
        subscriber = get(session, address) if address else None
        selection = selection_for(
            session, settings, now=now, subscriber=subscriber, cadence=cadence
        )
    who = subscriber.email if subscriber else "a new subscriber"
    if selection.skip:
        return Preview(who, 0, selection.reason, None)
    zone = subscriber.timezone if subscriber else settings.timezone
    body = DigestRenderer(settings).render_body(
        selection,
        cadence=cadence or (subscriber.cadence if subscriber else Cadence.DAILY.value),
        local_date=now.astimezone(ZoneInfo(zone)).date(),
    )
    sender = Sender.from_settings(settings)
    unsubscribe, preferences = _personal_links(settings, subscriber)
    personal = Personal(
        to_email=subscriber.email if subscriber else SAMPLE_ADDRESS,
        to_name=subscriber.name if subscriber else SAMPLE_NAME,
        message_id=new_message_id(sender.domain),
        date=now,
        unsubscribe_url=unsubscribe,
        preferences_url=preferences,
    )
    mail = body.content
    message = assemble(mail.subject, mail.text, mail.html, personal, sender)
    return Preview(who, len(selection.post_ids), "", message)


def send_test_copy(
    db: Database, settings: Settings, *, cadence: str, address: str, now: datetime
) -> TestSent:
    """Send one copy of what a new subscriber of every topic would get, marked as a test, now:
    one attempt through the configured transport, nothing queued.

    Raises ``InvalidEmail`` for a malformed address, ``NothingToSend`` when no post is new, and
    ``TestNotSent`` with the server's reply when it refused the copy or could not be reached.
    """
    to_email = normalize_email(address)
    with db.transaction() as session:
        selection = selection_for(session, settings, now=now, cadence=cadence)
        if selection.skip:
            raise NothingToSend(f"no test sent: {selection.reason} for a {cadence} digest")
        body = DigestRenderer(settings).render_body(
            selection, cadence=cadence, local_date=now.astimezone().date()
        )
        subscriber = find(session, to_email)
        unsubscribe, preferences = _personal_links(settings, subscriber)
        text, html = body.content.text, body.content.html
        fill = {UNSUBSCRIBE_URL: unsubscribe, PREFERENCES_URL: preferences}
        for placeholder, value in fill.items():
            text, html = text.replace(placeholder, value), html.replace(placeholder, value)
    sender = Sender.from_settings(settings)
    personal = Personal(
        to_email=to_email,
        to_name="",
        message_id=new_message_id(sender.domain),
        date=now,
        is_test=True,
    )
    message = assemble(body.content.subject, text, html, personal, sender)
    result = _send_once(settings, to_email, message)
    if result.classify().verdict is not Verdict.SENT:
        raise TestNotSent(f"test copy to {to_email} not sent: {result.reply}")
    return TestSent(to_email, len(selection.post_ids), result.reply)


def _send_once(settings: Settings, to_email: str, message: bytes) -> Result:
    # Imported here so that ``digest preview`` does not load the SMTP stack it never uses.
    from digest.delivery.running import run_async, transport_from_settings

    async def attempt() -> Result:
        transport = transport_from_settings(settings)
        try:
            return await transport.send(settings.envelope_from, to_email, message)
        finally:
            await transport.close()

    return run_async(attempt())
