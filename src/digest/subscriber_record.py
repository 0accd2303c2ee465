"""Everything the desk shows about one person: their subscriptions with the consent record of
each, their mail with each server's reply (newest first), and what bounced or complained.

A hard bounce or a complaint (``delivery/bounces.py``) leaves three traces, all read here: the
delivery marked ``bounced`` with the reply that refused it, the subscriptions moved to
``bounced`` or ``complained``, and the address's hash on the suppression list with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from digest import newsletters
from digest.addresses import hash_normalized
from digest.errors import SubscriberNotFound
from digest.models import Delivery, Newsletter, Subscriber, Subscription, Suppression
from digest.states import DeliveryStatus, SubscriberStatus
from digest.subscribers import get_by_id, subscriptions_of

#: The most deliveries a person's page lists.
HISTORY = 100
#: The largest id a row can have (a 32-bit integer column); a larger number names nobody.
MAX_ID = 2**31 - 1
_TROUBLE = (SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value)


@dataclass(frozen=True)
class Entry:
    """One subscription of the person, with the newsletter it is to."""

    subscription: Subscription
    newsletter: Newsletter | None

    @property
    def label(self) -> str:
        """The newsletter's name, or its id when it is gone."""
        if self.newsletter is None:
            return f"newsletter #{self.subscription.newsletter_id}"
        return self.newsletter.name


@dataclass(frozen=True)
class Record:
    """What the desk's page about one person shows."""

    person: Subscriber
    entries: list[Entry]
    deliveries: Sequence[Delivery]
    #: Whether the history holds more than ``deliveries`` shows.
    more_deliveries: bool
    bounced: list[Delivery]
    #: The subscriptions a bounce or a complaint ended.
    troubles: list[Entry]
    #: The suppression list's entry for the address: why (bounce, complaint, erased) and when.
    suppression: Suppression | None


def parse_id(value: str | int) -> int | None:
    """A row id typed in an address or a form (ASCII digits, in range), or None."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_ID:
        return None
    return int(text)


def person(session: Session, subscriber_id: int) -> Subscriber:
    """The person with this id; SubscriberNotFound for any other number, too large included."""
    if parse_id(subscriber_id) is None:
        raise SubscriberNotFound(f"no subscriber #{subscriber_id}")
    return get_by_id(session, subscriber_id)


def deliveries_of(session: Session, person: Subscriber, limit: int = HISTORY) -> list[Delivery]:
    """The person's mail, newest first, at most ``limit + 1`` (to tell there is more)."""
    return list(
        session.exec(
            select(Delivery)
            .where(col(Delivery.subscriber_id) == person.id)
            .order_by(col(Delivery.created_at).desc(), col(Delivery.id).desc())
            .limit(limit + 1)
        ).all()
    )


def suppression_of(session: Session, email: str) -> Suppression | None:
    """The suppression list's entry for this (normalised) address, or None."""
    return session.exec(
        select(Suppression).where(Suppression.email_hash == hash_normalized(email))
    ).first()


def entries_of(session: Session, person: Subscriber) -> list[Entry]:
    """The person's subscriptions, each with its newsletter, in newsletter order."""
    names = {int(n.id or 0): n for n in newsletters.listed(session, archived=True)}
    return [
        Entry(sub, names.get(sub.newsletter_id))
        for sub in subscriptions_of(session, int(person.id or 0))
    ]


def record(session: Session, subscriber_id: int, limit: int = HISTORY) -> Record:
    """The person's record for the desk; SubscriberNotFound when there is no such id."""
    found = person(session, subscriber_id)
    entries = entries_of(session, found)
    mail = deliveries_of(session, found, limit)
    shown = mail[:limit]
    return Record(
        person=found,
        entries=entries,
        deliveries=shown,
        more_deliveries=len(mail) > limit,
        bounced=[d for d in shown if d.status == DeliveryStatus.BOUNCED.value],
        troubles=[e for e in entries if e.subscription.status in _TROUBLE],
        suppression=suppression_of(session, found.email),
    )
