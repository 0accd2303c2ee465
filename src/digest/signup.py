"""The subscribe use case: a person asks to subscribe, and may get a confirmation mail.

The rules live here, below the web form and the JSON API alike: blocked domains, the per-address
cap on confirmation mails, recording the request with its consent, and queueing the mail (or
recording it as skipped when none is due), all in the one transaction that holds the
subscription and its mail, with the same work and the same rows whatever the address's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlmodel import Session

from digest import subscribers, subscription_requests
from digest.addresses import email_domain
from digest.compose.render import DigestRenderer
from digest.config import Settings
from digest.delivery import outbox
from digest.lifecycle import needs_confirmation_mail
from digest.links import confirm_url
from digest.newsletters import FIRST
from digest.states import DeliveryKind
from digest.subscriber_fields import Consent

CONFIRM_WINDOW = timedelta(hours=24)
#: The reasons a request's confirmation mail is recorded as skipped instead of queued.
SKIP_SUBSCRIBED = "already subscribed"
SKIP_OVER_LIMIT = "over the confirmation limit"


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
    newsletter_ids: Sequence[int] = (FIRST,),
    timezone: str | None = None,
    newsletter_names: Sequence[str] = (),
    alerts: bool | None = None,
) -> bool:
    """Record a request to join newsletters and queue one confirmation mail, covering them
    all, when one is due.

    True when a mail was queued. A blocked domain stores and sends nothing.

    A new, pending, active or unsubscribed address runs the same statements in the same order
    (lock the row, count its recent confirmations, write it back, write the mail's body and
    its delivery) and renders the same mail, so the answer's timing does not tell who is
    subscribed; ``tests/test_signup_timing.py`` holds that. When no mail is due (an active
    address, or past the cap) the delivery is written ``skipped`` with the reason, and only
    queued ones count towards the cap.
    """
    if is_blocked(email, settings.blocked_domains):
        return False
    held = subscribers.hold(session, email)
    # The row is locked (``hold``): a second web process asking for the same address waits
    # there and then counts this request's mail, so a burst cannot slip past the limit.
    recent = outbox.queued_since(
        session,
        subscriber_id=held.id,
        kind=DeliveryKind.CONFIRM.value,
        since=consent.at - CONFIRM_WINDOW,
    )
    # Past the cap (subscription bombing: someone keeps entering a victim's address) the
    # answer is the same, but the victim's inbox gets nothing more, and the request changes
    # nothing, so the link in the last mail they got still works.
    prior = subscription_requests.prior_statuses(session, held, newsletter_ids)
    skip = _why_no_mail(prior.values(), recent, settings.confirm_limit)
    done = subscription_requests.request_subscription(
        session,
        email,
        consent=consent,
        newsletter_ids=newsletter_ids,
        name=name,
        cadence=cadence,
        topics=topics,
        timezone=timezone,
        alerts=alerts,
        prior=prior,
        default_timezone=settings.timezone,
        default_send_hour=settings.send_hour,
        held=held,
        record=skip is None,
    )
    link = confirm_url(settings, done.subscriber_id, done.email, requested_at=done.requested_at)
    # No name: whoever typed this address may not own it, and the mail goes to its owner.
    mail = renderer.render_confirm(name="", confirm_url=link, newsletters=tuple(newsletter_names))
    # Written whether or not it goes (``skipped`` with the reason when not): the same rows,
    # the same size, the same indexes to update, so the commit costs the same too.
    outbox.enqueue_transactional(
        session,
        kind=DeliveryKind.CONFIRM.value,
        to_email=done.email,
        subscriber_id=done.subscriber_id,
        mail=mail,
        domain=domain,
        skip=skip,
    )
    return skip is None


def _why_no_mail(statuses: Iterable[str | None], recent: int, limit: int) -> str | None:
    """Why a request for subscriptions in these ``statuses``, whose address was sent
    ``recent`` mails today, gets no mail; None when it gets one."""
    if not any(needs_confirmation_mail(status) for status in statuses):
        return SKIP_SUBSCRIBED
    if recent >= limit:
        return SKIP_OVER_LIMIT
    return None
