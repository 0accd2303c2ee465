"""One announcement outside the outbox: as a reader would get it (``announce preview``), and
a copy marked as a test for an editor's own address (``announce test``), sent at once.

Neither takes anyone's once-key: a test copy never keeps its address from the real send.
"""

from __future__ import annotations

from datetime import datetime

from digest import announcement_store as store
from digest import newsletters
from digest.addresses import normalize_email
from digest.config import Settings
from digest.db import Database
from digest.delivery.replies import Verdict
from digest.errors import TestNotSent
from digest.mail.message import (
    Personal,
    Sender,
    assemble,
)
from digest.mail.message_id import new_message_id
from digest.newsletter_config import configure

# The digest's preview and test copy fill a reader's links and send one copy the same way.
from digest.previews import TestSent, personal_links, preview_personal, send_once
from digest.subscribers import find, reader


def preview(
    db: Database, settings: Settings, announcement_id: int, *, address: str | None, now: datetime
) -> bytes:
    """The whole message the reader at ``address`` (or a sample reader) would get; writes
    nothing. ``SubscriberNotFound`` when the address is not a reader of its newsletter."""
    with db.transaction() as session:
        row = store.get(session, announcement_id)
        config = configure(newsletters.by_id(session, row.newsletter_id), settings)
        subscriber = reader(session, address, config.id) if address else None
        content = store.render(session, settings, row)
    personal = preview_personal(
        settings, subscriber, config.id, domain=settings.from_domain, now=now
    )
    sender = Sender.for_newsletter(settings, config)
    return assemble(content.subject, content.text, content.html, personal, sender)


def send_test(
    db: Database, settings: Settings, announcement_id: int, *, address: str, now: datetime
) -> TestSent:
    """Send one copy, marked as a test, to ``address`` now: one attempt, nothing queued.

    ``TestNotSent`` with the server's reply when it refused the copy or could not be reached.
    """
    to_email = normalize_email(address)
    with db.transaction() as session:
        row = store.get(session, announcement_id)
        config = configure(newsletters.by_id(session, row.newsletter_id), settings)
        content = store.render(session, settings, row)
        fill = personal_links(settings, find(session, to_email), config.id)
    text, html = content.text, content.html
    for placeholder, value in fill.items():
        text, html = text.replace(placeholder, value), html.replace(placeholder, value)
    sender = Sender.for_newsletter(settings, config)
    personal = Personal(
        to_email=to_email,
        to_name="",
        message_id=new_message_id(sender.domain),
        date=now,
        is_test=True,
    )
    message = assemble(content.subject, text, html, personal, sender)
    result = send_once(settings, to_email, message)
    if result.classify().verdict is not Verdict.SENT:
        raise TestNotSent(f"test copy to {to_email} not sent: {result.reply}")
    return TestSent(to_email, 0, result.reply)
