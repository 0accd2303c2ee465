"""Where subscribers are stored: the person (address, name, zone, send hour) and, read together
with one of their subscriptions, the reader of a newsletter.

A person's place on each newsletter is a subscription; how a subscription changes state is in
``subscriptions.py``. Every function takes an open session (``Database.transaction()``) so the
caller decides what one transaction holds. Bulk CSV import and export live in
``subscribers_csv.py``, the parsing of the fields a person gives in ``subscriber_fields.py``,
the suppression list in ``suppressions.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from digest import audit, clicks, list_counts, webhook_events
from digest.addresses import email_hash, normalize_email, spellings
from digest.clock import utcnow
from digest.delivery import erasure
from digest.errors import SubscriberNotFound
from digest.models import Subscriber, Subscription
from digest.newsletters import FIRST
from digest.subscriber_fields import parse_status
from digest.suppressions import is_suppressed, suppress

_S = Subscriber.__table__  # type: ignore[attr-defined]
_U = Subscription.__table__  # type: ignore[attr-defined]
# Built once: the values go in as parameters, so each request reuses the compiled statement.
_ROW_BY_EMAIL = sa.select(_S).where(_S.c.email == sa.bindparam("email")).with_for_update()
_BY_EMAIL = select(Subscriber).where(Subscriber.email == sa.bindparam("email"))


@dataclass
class Reader:
    """A person read together with their subscription to one newsletter.

    The person's fields (address, name, zone, hour) and the subscription's (status, cadence,
    topics, consent, history) read as one row, as the faces show them.
    """

    person: Subscriber
    subscription: Subscription

    @property
    def id(self) -> int:
        """The person's id (what links and Message-IDs name)."""
        return int(self.person.id or 0)

    @property
    def email(self) -> str:
        return self.person.email

    @property
    def name(self) -> str:
        return self.person.name

    @property
    def timezone(self) -> str:
        return self.person.timezone

    @property
    def send_hour(self) -> int:
        return self.person.send_hour

    @property
    def newsletter_id(self) -> int:
        return self.subscription.newsletter_id

    @property
    def status(self) -> str:
        return self.subscription.status

    @property
    def cadence(self) -> str:
        return self.subscription.cadence

    @property
    def topics(self) -> list[str]:
        return list(self.subscription.topics or [])

    @property
    def last_digest_at(self) -> datetime | None:
        return self.subscription.last_digest_at

    @property
    def created_at(self) -> datetime:
        return self.subscription.created_at

    def __getattr__(self, name: str) -> Any:
        # The subscription's other fields (consent, confirmed_at, ...) read through, as a row
        # of the old single list did.
        if name.startswith("_") or name not in Subscription.model_fields:
            raise AttributeError(name)
        return getattr(self.subscription, name)

    def as_dict(self) -> dict[str, Any]:
        """Every field of the person and the subscription, as the admin faces show them."""
        values = {k: getattr(self.subscription, k) for k in Subscription.model_fields}
        # The person's fields, but the times of this subscription (when they joined it).
        values.update(
            {
                k: getattr(self.person, k)
                for k in Subscriber.model_fields
                if k not in ("created_at", "updated_at")
            }
        )
        values.pop("subscriber_id", None)
        values["subscription_id"] = self.subscription.id
        return values


# -- reading -------------------------------------------------------------------------------------


def find(session: Session, email: str) -> Subscriber | None:
    """The person with this address (any spelling), or None; see ``addresses.spellings``."""
    if "\x00" in email:  # no address holds one, and PostgreSQL refuses to compare it
        return None
    rows = (session.exec(_BY_EMAIL, params={"email": a}).first() for a in spellings(email))
    return next((row for row in rows if row is not None), None)


def get(session: Session, email: str) -> Subscriber:
    """The person with this address, or SubscriberNotFound."""
    subscriber = find(session, email)
    if subscriber is None:
        raise SubscriberNotFound(f"no subscriber {normalize_email(email)}")
    return subscriber


def get_by_id(session: Session, subscriber_id: int) -> Subscriber:
    """The person with this id, or SubscriberNotFound."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise SubscriberNotFound(f"no subscriber #{subscriber_id}")
    return subscriber


def subscription_of(session: Session, person_id: int, newsletter_id: int) -> Subscription | None:
    """The person's subscription to the newsletter, or None."""
    return session.exec(
        select(Subscription).where(
            Subscription.subscriber_id == person_id, Subscription.newsletter_id == newsletter_id
        )
    ).first()


def subscriptions_of(session: Session, person_id: int) -> Sequence[Subscription]:
    """Every subscription of the person, by newsletter."""
    return session.exec(
        select(Subscription)
        .where(Subscription.subscriber_id == person_id)
        .order_by(col(Subscription.newsletter_id))
    ).all()


def reader(session: Session, email: str, newsletter_id: int = FIRST) -> Reader:
    """The person with this address as a reader of the newsletter; SubscriberNotFound when
    they have no subscription to it."""
    person = get(session, email)
    found = subscription_of(session, int(person.id or 0), newsletter_id)
    if found is None:
        raise SubscriberNotFound(f"{person.email} is not on this newsletter")
    return Reader(person, found)


def list_readers(
    session: Session,
    *,
    newsletter_id: int = FIRST,
    status: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Reader]:
    """A newsletter's readers in address order, optionally of one status, a page at a time."""
    query = (
        select(Subscriber, Subscription)
        .join(Subscription, col(Subscription.subscriber_id) == col(Subscriber.id))
        .where(Subscription.newsletter_id == newsletter_id)
        .order_by(col(Subscriber.email))
    )
    if status:
        query = query.where(Subscription.status == parse_status(status, status))
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [Reader(person, sub) for person, sub in session.exec(query)]


def count_by_status(session: Session, newsletter_id: int | None = None) -> dict[str, int]:
    """How many subscriptions are in each status (every status present, zeros included), of
    one newsletter or of all: the counts the store keeps (``list_counts``), not a scan."""
    return list_counts.counts_by_status(session, newsletter_id)


@dataclass(frozen=True)
class Held:
    """An address's row as it stood when a request for it came in (locked), or None: new."""

    row: dict[str, Any] | None
    id: int = 0  # which no row has


def hold(session: Session, email: str) -> Held:
    """The person's row of this address, locked until commit, for a request to act on.

    PostgreSQL locks it with ``FOR UPDATE``; SQLite holds its write lock since ``BEGIN
    IMMEDIATE``. A second process asking for the same address waits here, then sees this one's
    request (and its confirmation mail) once it is committed.
    """
    session.flush()  # the lookup is plain SQL: it must see this session's own changes
    found = session.execute(_ROW_BY_EMAIL, {"email": normalize_email(email)}).mappings().first()
    return Held(None) if found is None else Held(dict(found), found["id"])


# -- the person ----------------------------------------------------------------------------------


def erase(session: Session, email: str) -> None:
    """Delete everything digest holds about the person, keeping only their hash as suppressed.

    Their subscriptions go with them, and their mail in the outbox too, whether it names them
    or only their address.
    """
    address = normalize_email(email)
    subscriber = find(session, address)
    if subscriber is None and not is_suppressed(session, address):
        raise SubscriberNotFound(f"no subscriber {address}")
    erasure.erase_for(
        session, subscriber_id=subscriber.id if subscriber is not None else None, address=address
    )
    newsletter_ids: list[int] = []
    if subscriber is not None:
        newsletter_ids = [s.newsletter_id for s in subscriptions_of(session, int(subscriber.id))]
        session.execute(sa.delete(_U).where(_U.c.subscriber_id == subscriber.id))
        clicks.forget_reader(session, int(subscriber.id))
        session.delete(subscriber)
    suppress(session, address, "erased")
    # Receivers hear of it by the hash alone, and the queue forgets the address too.
    stored = {address, subscriber.email if subscriber else address}
    webhook_events.erased(session, stored, email_hash(address), newsletter_ids, utcnow())
    # The log keeps that changes were made to them, by the hash alone from now on.
    audit.forget(session, {address, subscriber.email if subscriber else ""}, email_hash(address))
    session.flush()
