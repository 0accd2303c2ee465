"""The subscribe use case: a person asks to subscribe, and may get a confirmation mail.

The rules live here, below the web form and the JSON API alike: blocked domains, the per-address
cap on confirmation mails, recording the request with its consent, and queueing the mail, all
in the one transaction that holds the subscription and its mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlmodel import Session

from digest import subscribers
from digest.addresses import email_domain
from digest.compose.render import DigestRenderer
from digest.config import Settings
from digest.delivery import outbox
from digest.lifecycle import needs_confirmation_mail
from digest.links import confirm_url
from digest.states import DeliveryKind
from digest.subscriber_fields import Consent

CONFIRM_WINDOW = timedelta(hours=24)


def is_blocked(email: str, blocked_domains: Iterable[str]) -> bool:
    """Whether the address's domain, or a domain it is under, is on the block list."""
    domain = email_domain(email).lower()
    for blocked in blocked_domains:
        b = blocked.strip().lower().lstrip("@").rstrip(".")
        if b and (domain == b or domain.endswith("." + b)):
            return True
    return False


def record_subscription(
    session: Session,
    settings: Settings,
    renderer: DigestRenderer,
    email: str,
    *,
    consent: Consent,
    domain: str,
    name: str | None = None,
    cadence: str | None = None,
    topics: Iterable[str] | None = None,
) -> bool:
    """Record a request to subscribe and queue a confirmation mail when one is due.

    True when a mail was queued. A blocked domain stores and sends nothing. The mail is
    rendered whether or not it is queued, so a known address costs the same time as a new one
    and the answer's timing says little about who is subscribed.
    """
    if is_blocked(email, settings.blocked_domains):
        return False
    done = subscribers.request_subscription(
        session,
        email,
        consent=consent,
        name=name,
        cadence=cadence,
        topics=topics,
        default_timezone=settings.timezone,
        default_send_hour=settings.send_hour,
    )
    # No name: whoever typed this address may not own it, and the mail goes to its owner.
    mail = renderer.render_confirm(
        name="",
        confirm_url=confirm_url(settings, done.subscriber_id, done.email, now=consent.at),
    )
    if not needs_confirmation_mail(done.prior):
        return False
    # A new address has had no mail yet: the count is only asked for one already known.
    # request_subscription has just updated that subscriber's row, which holds its row lock
    # (and SQLite's write lock) until commit: a second web process asking for the same address
    # waits there and then counts this mail, so a burst cannot slip past the limit.
    if done.prior is not None and (
        outbox.queued_since(
            session,
            subscriber_id=done.subscriber_id,
            kind=DeliveryKind.CONFIRM.value,
            since=consent.at - CONFIRM_WINDOW,
        )
        >= settings.confirm_limit
    ):
        # Subscription bombing: someone keeps entering a victim's address. The request is
        # recorded, the answer is the same, but the victim's inbox gets nothing more.
        return False
    outbox.enqueue_transactional(
        session,
        kind=DeliveryKind.CONFIRM.value,
        to_email=done.email,
        subscriber_id=done.subscriber_id,
        mail=mail,
        domain=domain,
    )
    return True
