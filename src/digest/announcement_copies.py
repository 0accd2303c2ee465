"""One announcement outside the outbox: as a reader would get it (``announce preview``), and
a copy marked as a test for an editor's own address (``announce test``), sent at once.

Neither takes anyone's once-key: a test copy never keeps its address from the real send.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from digest import announcement_store as store
from digest import newsletters
from digest.addresses import normalize_email
from digest.config import Settings
from digest.db import Database
from digest.mail.message import (
    Sender,
    assemble,
)
from digest.newsletter_config import configure

# The digest's preview and test copy fill a reader's links and send one copy the same way.
from digest.previews import (
    TestCopy,
    TestSent,
    personal_links,
    preview_personal,
    send_test_mail,
)
from digest.subscribers import find, reader


def preview(
    db: Database, settings: Settings, announcement_id: int, *, address: str | None, now: datetime
) -> bytes:
    """The whole message the reader at ``address`` (or a sample reader) would get; writes
    nothing. ``SubscriberNotFound`` when the address is not a reader of its newsletter. The
    reader's real footer links are kept: the operator at the terminal holds the secret."""
    with db.transaction() as session:
        return preview_in(session, settings, announcement_id, address=address, now=now, inert=False)


def preview_in(
    session: Session,
    settings: Settings,
    announcement_id: int,
    *,
    address: str | None,
    now: datetime,
    inert: bool = True,
) -> bytes:
    """``preview`` within the caller's transaction (the desk's request), with inert footer
    links (``previews.INERT_LINKS``) unless ``inert`` is False."""
    row = store.get(session, announcement_id)
    config = configure(newsletters.by_id(session, row.newsletter_id), settings)
    subscriber = reader(session, address, config.id) if address else None
    content = store.render(session, settings, row)
    personal = preview_personal(
        settings, subscriber, config.id, domain=settings.from_domain, now=now, inert=inert
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
        copy = prepare_test(session, settings, announcement_id, to_email=to_email)
    reply = send_test_mail(settings, copy.config, to_email, copy.content, copy.fill, now)
    return TestSent(to_email, 0, reply)


def prepare_test(
    session: Session, settings: Settings, announcement_id: int, *, to_email: str
) -> TestCopy:
    """The test copy ``send_test`` sends, rendered in the caller's transaction."""
    row = store.get(session, announcement_id)
    config = configure(newsletters.by_id(session, row.newsletter_id), settings)
    content = store.render(session, settings, row)
    fill = personal_links(settings, find(session, to_email), config.id)
    return TestCopy(config, content, fill, 0)
