"""List hygiene's answer: the reader pressed "Yes, keep sending" (``web/stay.py``).

A retired reader is active again (``lifecycle`` Event.STAY, which clears the question as every
return to active does); an asked one is asked no more. The answer counts for the rule as a
click now (``last_click_at``, unless they opted out of tracking), so whoever answers starts a
fresh window of M weeks instead of being asked again at the next pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from digest import newsletters, subscriptions
from digest.clock import utcnow
from digest.links_auth import Linked
from digest.models import Subscription
from digest.newsletters import FIRST
from digest.states import SubscriberStatus
from digest.subscribers import subscription_of

ACTIVE = SubscriberStatus.ACTIVE.value


@dataclass(frozen=True)
class Answer:
    """What the "keep sending" pages say: whose subscription to what, and where it stands."""

    email: str
    newsletter: str  # its name
    status: str | None  # the subscription's status; None: they never had one
    came_back: bool = False  # retired, and active again now


def answer_state(session: Session, linked: Linked) -> Answer:
    """Where the link's reader stands on its newsletter (for the page; changes nothing)."""
    sub, name = _linked_subscription(session, linked)
    return Answer(linked.subscriber.email, name, sub.status if sub else None)


def keep_sending(session: Session, linked: Linked, now: datetime | None = None) -> Answer:
    """The reader pressed "Yes, keep sending": a retired reader is active again, an asked one
    is asked no more. Someone who left, bounced or complained since is not brought back."""
    at = now or utcnow()
    sub, name = _linked_subscription(session, linked)
    if sub is None:
        return Answer(linked.subscriber.email, name, None)
    # Read it again under a row lock: a hygiene pass retiring them right now commits first,
    # and then the answer brings them back instead of leaving them retired behind a "kept".
    session.refresh(sub, with_for_update=True)
    came_back = subscriptions.stay(session, sub)
    if sub.status == ACTIVE:
        sub.repermission_sent_at = None
        if not linked.subscriber.tracking_opt_out:
            # The answer starts a fresh window: asked again only after M more silent weeks.
            sub.last_click_at = max(sub.last_click_at or at, at)
        sub.updated_at = at
        session.add(sub)
        session.flush()
    return Answer(linked.subscriber.email, name, sub.status, came_back)


def _linked_subscription(session: Session, linked: Linked) -> tuple[Subscription | None, str]:
    newsletter_id = linked.newsletter_id or FIRST
    name = newsletters.by_id(session, newsletter_id).name
    return subscription_of(session, linked.id, newsletter_id), name
