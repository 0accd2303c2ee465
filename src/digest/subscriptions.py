"""How a reader's subscriptions change: added by an operator, asked for through the form,
confirmed, left (one newsletter or all), bounced, and their preferences.

The state machine itself is ``lifecycle.py`` (pure); this module applies it to the stored
subscriptions and stamps the times that go with each move. What applies to the person (a hard
bounce, a complaint) changes every subscription they have; an unsubscribe changes one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from digest import alert_optin, webhook_events
from digest.addresses import clean_name, normalize_email
from digest.clock import utcnow
from digest.delivery import outbox
from digest.errors import Suppressed
from digest.lifecycle import Event, next_status
from digest.models import Subscriber, Subscription
from digest.newsletters import FIRST
from digest.states import Cadence, SubscriberStatus
from digest.subscriber_fields import (
    Consent,
    consent_values,
    parse_cadence,
    parse_hour,
    parse_timezone,
    parse_topics,
)
from digest.subscribers import Reader, find, subscription_of, subscriptions_of
from digest.suppressions import is_suppressed, lift, suppress

_S = Subscriber.__table__  # type: ignore[attr-defined]
_U = Subscription.__table__  # type: ignore[attr-defined]


def add(
    session: Session,
    email: str,
    *,
    newsletter_id: int = FIRST,
    name: str | None = None,
    cadence: str | None = None,
    topics: str | Iterable[str] | None = None,
    timezone: str | None = None,
    send_hour: int | str | None = None,
    confirmed: bool = False,
    consent: Consent | None = None,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
    default_cadence: str = Cadence.DAILY.value,
    alerts: bool | None = None,
) -> Reader:
    """Add a reader to a newsletter as an operator does: pending, or active with ``confirmed``.

    An existing address is updated with the fields given (never duplicated). A suppressed
    address is refused: only the person may subscribe again, through the public form.
    """
    address = normalize_email(email)
    if is_suppressed(session, address):
        raise Suppressed(f"{address} was erased or bounced; only they can subscribe again")
    now = utcnow()
    person = find(session, address)
    if person is None:
        person = Subscriber(
            email=address,
            timezone=default_timezone,
            send_hour=default_send_hour,
            created_at=now,
            updated_at=now,
        )
        session.add(person)
        session.flush()
    if name is not None:
        person.name = clean_name(name)
    if timezone is not None:
        person.timezone = parse_timezone(timezone, default_timezone)
    if send_hour is not None:
        person.send_hour = parse_hour(send_hour, default_send_hour)
    person.updated_at = now
    sub = subscription_of(session, int(person.id or 0), newsletter_id)
    if sub is None:
        sub = Subscription(
            subscriber_id=int(person.id or 0),
            newsletter_id=newsletter_id,
            cadence=default_cadence,
            created_at=now,
            updated_at=now,
        )
        session.add(sub)
        created = sub
    else:
        created = None
    if cadence is not None:
        sub.cadence = parse_cadence(cadence)
    if topics is not None:
        sub.topics = parse_topics(topics)
    if alerts is not None:
        sub.alerts = alerts
    if consent is not None:
        for field, value in consent_values(consent).items():
            setattr(sub, field, value)
    if confirmed:
        _apply(session, sub, Event.ADD_CONFIRMED, now)
    sub.updated_at = now
    session.flush()
    if created is not None and sub.status == SubscriberStatus.PENDING.value:
        # A new pending subscription moved through no transition: reported here.
        _report(session, sub, now)
    if alerts is False:
        # Opted out: the alerts already waiting for them do not go either.
        alert_optin.cancel_alerts(session, int(person.id or 0), newsletter_id)
    return Reader(person, sub)


def confirm(
    session: Session, person: Subscriber, requested_at: datetime | None = None
) -> list[int]:
    """The person followed their confirmation link: every subscription that request asked for
    (its ``consent_at``), or every pending one, becomes active. The newsletters it changed."""
    changed = []
    now = utcnow()
    for sub in subscriptions_of(session, int(person.id or 0)):
        if requested_at is not None and sub.consent_at != requested_at:
            continue
        if _apply(session, sub, Event.CONFIRM, now):
            changed.append(sub.newsletter_id)
    if changed:
        # They asked themselves, so an old erase or bounce no longer holds them back.
        lift(session, person.email)
    session.flush()
    return changed


def unsubscribe(session: Session, person: Subscriber, newsletter_id: int | None = FIRST) -> bool:
    """Stop one newsletter's mail to the person now (all of them with ``None``); True when
    this changed a status.

    The queued and deferred mail of what they left is cancelled in the same transaction, so
    nothing already in the outbox reaches them afterwards.
    """
    now = utcnow()
    changed = False
    for sub in subscriptions_of(session, int(person.id or 0)):
        if newsletter_id is None or sub.newsletter_id == newsletter_id:
            changed |= _apply(session, sub, Event.UNSUBSCRIBE, now)
    session.flush()
    return changed


def mark_bounced(session: Session, person: Subscriber, *, complaint: bool = False) -> bool:
    """A hard bounce or a complaint: no more mail from any newsletter, and the address is
    suppressed for bulk imports. True when a subscription's status changed."""
    now = utcnow()
    event = Event.COMPLAIN if complaint else Event.BOUNCE
    changed = False
    for sub in subscriptions_of(session, int(person.id or 0)):
        changed |= _apply(session, sub, event, now)
    suppress(session, person.email, "complaint" if complaint else "bounce")
    session.flush()
    return changed


def record_bounce(
    session: Session, email: str, *, subscriber_id: int | None = None, complaint: bool = False
) -> bool:
    """A hard bounce of, or a complaint about, mail to ``email``: the person it reached (by id
    when known, else by address) gets no more mail from any newsletter, and the address is
    suppressed either way. True when a subscription's status changed; doing it twice changes
    nothing more.

    The person is touched only while ``email`` is still their address: someone who changed
    their address since must not lose the new one to a bounce of the old.
    """
    person = session.get(Subscriber, subscriber_id) if subscriber_id else find(session, email)
    if person is None or person.email != email:
        suppress(session, email, "complaint" if complaint else "bounce")
        return False
    return mark_bounced(session, person, complaint=complaint)


def retire(session: Session, subscription_id: int, asked_at: datetime) -> bool:
    """List hygiene retires the reader from this newsletter (status inactive) if they are still
    unanswered: active, asked at ``asked_at``, no click and no return since. One conditional
    UPDATE, so an answer committed meanwhile wins (PostgreSQL re-checks it on the row's newest
    version); only when it changed is the queued mail cancelled. The record and their "still
    want this?" time stay. True when it changed."""
    now = utcnow()
    joined = sa.func.coalesce(_U.c.active_since, _U.c.confirmed_at, _U.c.created_at)
    unanswered = sa.and_(
        _U.c.id == subscription_id,
        _U.c.status == SubscriberStatus.ACTIVE.value,
        _U.c.repermission_sent_at == asked_at,
        sa.or_(_U.c.last_click_at.is_(None), _U.c.last_click_at <= asked_at),
        joined <= asked_at,
    )
    after = next_status(SubscriberStatus.ACTIVE, Event.RETIRE)
    values = stamps(after, now)
    if not session.execute(sa.update(_U).where(unanswered).values(**values)).rowcount:
        return False
    sub = session.get(Subscription, subscription_id, populate_existing=True)
    if sub is not None:
        _moved(session, sub, after, now)
    session.flush()
    return True


def stay(session: Session, sub: Subscription) -> bool:
    """The reader answered "still want this?": a retired one is active again (which clears the
    question, as every return does). True when the status changed."""
    changed = _apply(session, sub, Event.STAY, utcnow())
    session.flush()
    return changed


def update_preferences(
    session: Session,
    reader: Reader,
    *,
    cadence: str | None = None,
    topics: str | Iterable[str] | None = None,
    timezone: str | None = None,
    send_hour: int | str | None = None,
    name: str | None = None,
    alerts: bool | None = None,
    tracking_opt_out: bool | None = None,
) -> Reader:
    """Change what and when a reader receives; applies from the next edition.

    Cadence, topics and the alerts opt-in (off cancels its queued alerts) are the
    subscription's; zone, hour, name and the click-counting opt-out the person's, shared by
    every newsletter. An absent
    or empty value keeps what they have (topics aside: choosing none is a choice). Every value
    is checked before any is changed, so a bad hour cannot half-save a form.
    """
    person, sub = reader.person, reader.subscription
    new_cadence = parse_cadence(cadence, sub.cadence)
    new_topics = parse_topics(topics) if topics is not None else None
    new_timezone = parse_timezone(timezone, person.timezone)
    new_hour = parse_hour(send_hour, person.send_hour)
    now = utcnow()
    sub.cadence = new_cadence
    if new_topics is not None:
        sub.topics = new_topics
    person.timezone = new_timezone
    person.send_hour = new_hour
    if name is not None:
        person.name = clean_name(name)
    if tracking_opt_out is not None:
        # "Don't count my clicks": their mail has plain links from its next message on.
        person.tracking_opt_out = tracking_opt_out
    person.updated_at = sub.updated_at = now
    session.add(person)
    session.add(sub)
    session.flush()
    if alerts is not None:
        alert_optin.set_alerts(session, sub, alerts)
    return reader


def update_person(session: Session, person: Subscriber, *, timezone: str | None = None) -> None:
    """Change what the person's subscriptions share (their zone); an empty value keeps it."""
    person.timezone = parse_timezone(timezone, person.timezone)
    person.updated_at = utcnow()
    session.add(person)
    session.flush()


# -- internals -----------------------------------------------------------------------------------


def stamps(after: SubscriberStatus, now: datetime) -> dict[str, object]:
    """The columns that change with a move to ``after``, besides the status itself."""
    stamps: dict[str, object] = {"status": after.value, "updated_at": now}
    if after is SubscriberStatus.ACTIVE:
        # Becoming active again answers list hygiene's question, whichever way they came.
        stamps.update(
            confirmed_at=now, unsubscribed_at=None, active_since=now, repermission_sent_at=None
        )
    elif after is SubscriberStatus.PENDING:
        stamps["confirmed_at"] = None
    elif after is SubscriberStatus.UNSUBSCRIBED:
        stamps["unsubscribed_at"] = now
    return stamps


def _apply(session: Session, sub: Subscription, event: Event, now: datetime) -> bool:
    """Move the subscription through the state machine and stamp the times that go with it;
    True when its status changed."""
    before = SubscriberStatus(sub.status)
    after = next_status(before, event)
    if after is before:
        return False
    for field, value in stamps(after, now).items():
        setattr(sub, field, value)
    session.add(sub)
    _moved(session, sub, after, now)
    return True


def _moved(session: Session, sub: Subscription, after: SubscriberStatus, now: datetime) -> None:
    """What follows a move to ``after``: the webhooks told, and leaving cancels queued mail."""
    _report(session, sub, now)
    if after is not SubscriberStatus.ACTIVE:
        outbox.cancel_for(session, sub.subscriber_id, newsletter_id=sub.newsletter_id)
        if not _still_on_a_list(session, sub.subscriber_id):
            # Mail of no newsletter (a confirmation) has nobody left to be for.
            outbox.cancel_for(session, sub.subscriber_id)


def _report(session: Session, sub: Subscription, now: datetime) -> None:
    """The subscription's new status to the webhooks that listen, in this transaction."""
    webhook_events.subscription_changed(
        session,
        subscriber_id=sub.subscriber_id,
        newsletter_id=sub.newsletter_id,
        status=sub.status,
        at=now,
    )


def _still_on_a_list(session: Session, person_id: int) -> bool:
    """Whether the person is active on, or asking for, some newsletter."""
    session.flush()
    live = (SubscriberStatus.ACTIVE.value, SubscriberStatus.PENDING.value)
    found = session.execute(
        sa.select(_U.c.id).where(_U.c.subscriber_id == person_id, _U.c.status.in_(live)).limit(1)
    ).first()
    return found is not None
