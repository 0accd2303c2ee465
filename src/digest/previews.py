"""One digest outside any edition: what a subscriber would get now (``digest preview``), and a
copy marked as a test for an editor's own address (``digest send --test``).

Both use the same selection and history as an edition (``selection_for`` below); neither
takes a subscriber's period, so neither changes what the next edition sends. A test copy is
sent at once, tried once, and never enters the outbox: an editor waiting for it must hear
"refused" or "unreachable" now, not find it delivered hours later by a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session

from digest import links, newsletters
from digest.addresses import normalize_email
from digest.alert_history import reader_states, recent_alerts
from digest.compose.mail_links import digest_links
from digest.compose.render import DigestRenderer
from digest.compose.select import Limits, Profile, Selection, normalize_topics
from digest.compose.select import select as select_posts
from digest.config import Settings
from digest.db import Database
from digest.delivery.replies import Verdict
from digest.delivery.transport import Result
from digest.errors import NothingToSend, TestNotSent
from digest.mail.content import MailContent
from digest.mail.message import (
    PREFERENCES_URL,
    UNSUBSCRIBE_ALL_URL,
    UNSUBSCRIBE_URL,
    Personal,
    Sender,
    assemble,
)
from digest.mail.message_id import new_message_id
from digest.models import Subscriber
from digest.newsletter_config import NewsletterConfig, configure
from digest.planning import S, candidates, featured_history
from digest.subscribers import Reader, find, reader

#: Who a preview is addressed to when no subscriber is named.
SAMPLE_ADDRESS = "reader@example.com"
SAMPLE_NAME = "Reader"
#: The footer's links in a preview shown on the desk: inert fragments, clearly marked, that no
#: route accepts. A reader's real links are signed capabilities (one click unsubscribes, the
#: other changes their preferences) and the desk shows previews to any role, read-only too.
INERT_LINKS = {
    UNSUBSCRIBE_URL: "#preview-unsubscribe",
    UNSUBSCRIBE_ALL_URL: "#preview-unsubscribe-all",
    PREFERENCES_URL: "#preview-preferences",
}


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


def personal_links(
    settings: Settings, subscriber: Subscriber | Reader | None, newsletter_id: int
) -> dict[str, str]:
    """The footer's links of ``subscriber`` by placeholder (unsubscribe from this newsletter,
    from all, preferences); a stranger gets the site's home for each."""
    if subscriber is None or not subscriber.id:
        home = settings.base_url + "/"
        return {UNSUBSCRIBE_URL: home, UNSUBSCRIBE_ALL_URL: home, PREFERENCES_URL: home}
    sid, email = subscriber.id, subscriber.email
    return {
        UNSUBSCRIBE_URL: links.unsubscribe_url(settings, sid, email, newsletter_id),
        UNSUBSCRIBE_ALL_URL: links.unsubscribe_url(settings, sid, email, None),
        PREFERENCES_URL: links.preferences_url(settings, sid, email),
    }


def preview_personal(
    settings: Settings,
    subscriber: Subscriber | Reader | None,
    newsletter_id: int,
    *,
    domain: str,
    now: datetime,
    inert: bool = False,
) -> Personal:
    """The personal parts of a preview's message: the reader's (or a sample reader's) address,
    name and footer links (``INERT_LINKS`` when ``inert``), and a fresh Message-ID."""
    fill = INERT_LINKS if inert else personal_links(settings, subscriber, newsletter_id)
    return Personal(
        to_email=subscriber.email if subscriber else SAMPLE_ADDRESS,
        to_name=subscriber.name if subscriber else SAMPLE_NAME,
        message_id=new_message_id(domain),
        date=now,
        unsubscribe_url=fill[UNSUBSCRIBE_URL],
        preferences_url=fill[PREFERENCES_URL],
        unsubscribe_all_url=fill[UNSUBSCRIBE_ALL_URL],
    )


def preview(
    db: Database,
    settings: Settings,
    *,
    address: str | None,
    cadence: str | None,
    now: datetime,
    newsletter: str | None = None,
) -> Preview:
    """The digest the reader at ``address`` (or a new reader of every topic) would get now
    from the newsletter (its slug; None: the only one).

    Raises ``SubscriberNotFound`` for an address that is not on it; writes nothing. The
    reader's real footer links are kept: the operator at the terminal already holds the secret.
    """
    with db.transaction() as session:
        return preview_in(
            session,
            settings,
            address=address,
            cadence=cadence,
            now=now,
            newsletter=newsletter,
            inert=False,
        )


def preview_in(
    session: Session,
    settings: Settings,
    *,
    address: str | None,
    cadence: str | None,
    now: datetime,
    newsletter: str | None = None,
    inert: bool = True,
) -> Preview:
    """``preview`` within the caller's transaction (the desk's request); its footer links are
    ``INERT_LINKS`` unless ``inert`` is False, so a page showing it hands out no capability."""
    config = configure(newsletters.choose(session, newsletter), settings)
    subscriber = reader(session, address, config.id) if address else None
    selection = selection_for(
        session, settings, config, now=now, subscriber=subscriber, cadence=cadence
    )
    who = subscriber.email if subscriber else "a new subscriber"
    if selection.skip:
        return Preview(who, 0, selection.reason, None)
    zone = subscriber.timezone if subscriber else settings.timezone
    cadence = cadence or (subscriber.cadence if subscriber else config.default_cadence)
    local_date = now.astimezone(ZoneInfo(zone)).date()
    body = DigestRenderer(settings, config).render_body(
        selection, cadence=cadence, local_date=local_date
    )
    sender = Sender.for_newsletter(settings, config)
    personal = preview_personal(
        settings, subscriber, config.id, domain=sender.domain, now=now, inert=inert
    )
    # An edition's UTM parameters, but not tracked: no edition exists for the links to name,
    # so they go straight to the site and an editor's clicks are never counted.
    mail = digest_links(body.content, config, selection, cadence=cadence, local_date=local_date)
    message = assemble(mail.subject, mail.text, mail.html, personal, sender)
    return Preview(who, len(selection.post_ids), "", message)


def send_test_copy(
    db: Database,
    settings: Settings,
    *,
    cadence: str,
    address: str,
    now: datetime,
    newsletter: str | None = None,
) -> TestSent:
    """Send one copy of what a new subscriber of every topic would get, marked as a test, now:
    one attempt through the configured transport, nothing queued.

    Raises ``InvalidEmail`` for a malformed address, ``NothingToSend`` when no post is new, and
    ``TestNotSent`` with the server's reply when it refused the copy or could not be reached.
    """
    to_email = normalize_email(address)
    with db.transaction() as session:
        copy = prepare_test_copy(
            session, settings, cadence=cadence, to_email=to_email, now=now, newsletter=newsletter
        )
    reply = send_test_mail(settings, copy.config, to_email, copy.content, copy.fill, now)
    return TestSent(to_email, copy.posts, reply)


@dataclass(frozen=True)
class TestCopy:
    """A test copy rendered, to send: its newsletter, content, footer links and posts."""

    config: NewsletterConfig
    content: MailContent
    fill: dict[str, str]
    posts: int


def prepare_test_copy(
    session: Session,
    settings: Settings,
    *,
    cadence: str,
    to_email: str,
    now: datetime,
    newsletter: str | None = None,
) -> TestCopy:
    """The test copy ``send_test_copy`` sends, rendered in the caller's transaction;
    ``NothingToSend`` when no post is new."""
    config = configure(newsletters.choose(session, newsletter), settings)
    selection = selection_for(session, settings, config, now=now, cadence=cadence)
    if selection.skip:
        raise NothingToSend(f"no test sent: {selection.reason} for a {cadence} digest")
    local_date = now.astimezone().date()
    body = DigestRenderer(settings, config).render_body(
        selection, cadence=cadence, local_date=local_date
    )
    fill = personal_links(settings, find(session, to_email), config.id)
    content = digest_links(body.content, config, selection, cadence=cadence, local_date=local_date)
    return TestCopy(config, content, fill, len(selection.post_ids))


def send_test_mail(
    settings: Settings,
    config: NewsletterConfig,
    to_email: str,
    content: MailContent,
    fill: dict[str, str],
    now: datetime,
) -> str:
    """Send ``content``, its placeholders filled from ``fill``, to ``to_email`` now, marked as
    a test: one attempt, nothing queued; the server's reply, or ``TestNotSent`` with it."""
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
    return result.reply


def send_once(settings: Settings, to_email: str, message: bytes) -> Result:
    # Imported here so that ``digest preview`` does not load the SMTP stack it never uses.
    from digest.delivery.running import run_async, transport_from_settings

    async def attempt() -> Result:
        transport = transport_from_settings(settings)
        try:
            return await transport.send(settings.envelope_from, to_email, message)
        finally:
            await transport.close()

    return run_async(attempt())


def selection_for(
    session: Session,
    settings: Settings,
    newsletter: NewsletterConfig,
    *,
    now: datetime,
    subscriber: Reader | None = None,
    cadence: str | None = None,
) -> Selection:
    """What one reader (or a new reader of every topic) would get at ``now``.

    The same rules and the same history as an edition, for ``digest preview`` and test sends.
    """
    cadence = cadence or (subscriber.cadence if subscriber else newsletter.default_cadence)
    alerts = recent_alerts(session, newsletter.id, cadence, now)
    pool = candidates(session, newsletter, now, alerts.post_ids)
    if subscriber is None:
        profile = Profile(cadence=cadence)
    else:
        had: frozenset[int] = frozenset()
        tests = featured_history(session, pool, newsletter.id, alerts.post_ids).tests()
        if tests:
            flags = session.execute(
                sa.select(*(t for _, t in tests)).where(S.c.id == subscriber.id)
            ).one()
            had = frozenset(pid for (pid, _), flag in zip(tests, flags, strict=True) if flag)
        alerted, held = alerts.split(reader_states(session, alerts, subscriber.id))
        profile = Profile(
            cadence=cadence,
            topics=normalize_topics(subscriber.topics),
            last_digest_at=subscriber.last_digest_at,
            received=had,
            alerted=alerted,
            held=held,
        )
    return select_posts(pool, profile, now, Limits.from_settings(settings))
