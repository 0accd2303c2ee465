"""The welcome mail: one per reader and newsletter, queued when a subscription becomes active
(a confirmed link, or an operator's ``--welcome``), in the same transaction.

It says what they signed up for and when the first digest comes, in their own zone, by the
scheduler's own rule (``periods.first_due``). The once-key ``"{newsletter}/welcome"`` on the
outbox's unique (subscriber, once-key) makes it at most one, whatever runs twice or at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from digest import newsletters
from digest.clock import utcnow
from digest.compose.render import Renderers
from digest.config import Settings
from digest.delivery import outbox
from digest.models import Subscriber, Subscription
from digest.newsletter_config import configure
from digest.periods import first_due, local_words
from digest.states import DeliveryKind, SubscriberStatus
from digest.subscribers import subscription_of

WELCOME = "welcome"  # what the once-key names: "2/welcome"


def queue_welcomes(
    session: Session,
    settings: Settings,
    person: Subscriber,
    newsletter_ids: Iterable[int],
    *,
    renderers: Renderers,
    now: datetime | None = None,
) -> int:
    """Queue the welcome mail of each of ``newsletter_ids`` the person is active on, unless
    one was queued before; how many were queued now."""
    queued = 0
    for newsletter_id in dict.fromkeys(newsletter_ids):
        sub = subscription_of(session, int(person.id or 0), newsletter_id)
        if sub is None or sub.status != SubscriberStatus.ACTIVE.value:
            continue
        config = configure(newsletters.by_id(session, newsletter_id), settings)
        at = now or utcnow()
        when = first_due(
            sub.cadence,
            person.timezone,
            person.send_hour,
            at,
            joined=sub.active_since or at,
            weekly_day=config.weekly_day,
        )
        mail = renderers.for_newsletter(config).render_welcome(
            description=config.description,
            cadence=sub.cadence,
            topics=tuple(sub.topics or config.topics),
            first_digest=local_words(when, person.timezone),
        )
        made = outbox.enqueue_once(
            session,
            kind=DeliveryKind.WELCOME,
            once_key=config.once_key(WELCOME),
            subscriber_id=int(person.id or 0),
            to_email=person.email,
            mail=mail,
            domain=settings.from_domain,
        )
        queued += made is not None
    return queued


def queue_welcomes_since(
    session: Session,
    settings: Settings,
    newsletter_id: int,
    since: datetime,
    *,
    renderers: Renderers,
) -> int:
    """Queue the newsletter's welcome mail for every reader who became active on it at or
    after ``since`` (what an import just activated); how many were queued."""
    people = session.exec(
        select(Subscriber)
        .join(Subscription, col(Subscription.subscriber_id) == col(Subscriber.id))
        .where(
            Subscription.newsletter_id == newsletter_id,
            Subscription.status == SubscriberStatus.ACTIVE.value,
            col(Subscription.active_since) >= since,
        )
        .order_by(col(Subscriber.id))
    ).all()
    return sum(
        queue_welcomes(session, settings, person, [newsletter_id], renderers=renderers)
        for person in people
    )
