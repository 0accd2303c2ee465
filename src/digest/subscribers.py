"""Where subscribers are stored and change state: add, find, list, subscribe, confirm, leave, erase.

Every function takes an open session (``Database.transaction()``) so the caller decides what
one transaction holds. Bulk CSV import and export live in ``subscribers_csv.py``, the parsing
of the fields a person gives in ``subscriber_fields.py``, the suppression list in
``suppressions.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from digest.addresses import clean_name, normalize_email, spellings
from digest.clock import utcnow
from digest.db import dialect_insert
from digest.delivery import outbox
from digest.errors import SubscriberNotFound, Suppressed
from digest.lifecycle import Event, next_status
from digest.models import Subscriber
from digest.states import Cadence, SubscriberStatus
from digest.subscriber_fields import (
    Consent,
    consent_values,
    parse_cadence,
    parse_hour,
    parse_status,
    parse_timezone,
    parse_topics,
)
from digest.suppressions import is_suppressed, lift, suppress

_S = Subscriber.__table__  # type: ignore[attr-defined]
# Built once: the values go in as parameters, so each request reuses the compiled statement.
_ROW_BY_EMAIL = sa.select(_S).where(_S.c.email == sa.bindparam("email")).with_for_update()
_BY_EMAIL = select(Subscriber).where(Subscriber.email == sa.bindparam("email"))


# -- reading -------------------------------------------------------------------------------------


def find(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any spelling), or None; see ``addresses.spellings``."""
    rows = (session.exec(_BY_EMAIL, params={"email": a}).first() for a in spellings(email))
    return next((row for row in rows if row is not None), None)


def get(session: Session, email: str) -> Subscriber:
    """The subscriber with this address, or SubscriberNotFound."""
    subscriber = find(session, email)
    if subscriber is None:
        raise SubscriberNotFound(f"no subscriber {normalize_email(email)}")
    return subscriber


def get_by_id(session: Session, subscriber_id: int) -> Subscriber:
    """The subscriber with this id, or SubscriberNotFound."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise SubscriberNotFound(f"no subscriber #{subscriber_id}")
    return subscriber


def list_subscribers(
    session: Session, *, status: str | None = None, limit: int | None = None, offset: int = 0
) -> Sequence[Subscriber]:
    """Subscribers in address order, optionally of one status, a page at a time."""
    query = select(Subscriber).order_by(col(Subscriber.email))
    if status:
        query = query.where(Subscriber.status == parse_status(status, status))
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return session.exec(query).all()


def count_by_status(session: Session) -> dict[str, int]:
    """How many subscribers are in each status (every status present, zeros included)."""
    counts = {s.value: 0 for s in SubscriberStatus}
    rows = session.exec(select(Subscriber.status, func.count()).group_by(Subscriber.status))
    for status, n in rows:
        counts[status] = n
    return counts


# -- changing ------------------------------------------------------------------------------------


def add(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    cadence: str | None = None,
    topics: str | Iterable[str] | None = None,
    timezone: str | None = None,
    send_hour: int | str | None = None,
    confirmed: bool = False,
    consent: Consent | None = None,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
) -> Subscriber:
    """Add a subscriber as an operator does: pending, or active with ``confirmed``.

    An existing address is updated with the fields given (never duplicated). A suppressed
    address is refused: only the person may subscribe again, through the public form.
    """
    address = normalize_email(email)
    if is_suppressed(session, address):
        raise Suppressed(f"{address} was erased or bounced; only they can subscribe again")
    now = utcnow()
    subscriber = find(session, address) or _new(
        session, address, default_timezone, default_send_hour, now
    )
    if name is not None:
        subscriber.name = clean_name(name)
    if cadence is not None:
        subscriber.cadence = parse_cadence(cadence)
    if topics is not None:
        subscriber.topics = parse_topics(topics)
    if timezone is not None:
        subscriber.timezone = parse_timezone(timezone, default_timezone)
    if send_hour is not None:
        subscriber.send_hour = parse_hour(send_hour, default_send_hour)
    if consent is not None:
        _record_consent(subscriber, consent)
    if confirmed:
        _apply(session, subscriber, Event.ADD_CONFIRMED, now)
    subscriber.updated_at = now
    session.flush()
    return subscriber


@dataclass(frozen=True)
class Held:
    """An address's row as it stood when a request for it came in (locked), or None: new."""

    row: dict[str, Any] | None
    id: int = 0  # which no row has
    status: str | None = None


def hold(session: Session, email: str) -> Held:
    """The row of this address, locked until commit, for a request to act on.

    PostgreSQL locks it with ``FOR UPDATE``; SQLite holds its write lock since ``BEGIN
    IMMEDIATE``. A second process asking for the same address waits here, then sees this one's
    request (and its confirmation mail) once it is committed.
    """
    session.flush()  # the lookup is plain SQL: it must see this session's own changes
    found = session.execute(_ROW_BY_EMAIL, {"email": normalize_email(email)}).mappings().first()
    return Held(None) if found is None else Held(dict(found), found["id"], found["status"])


@dataclass(frozen=True)
class Requested:
    """A subscribe request as stored: the subscriber's id, address, name, and status before."""

    subscriber_id: int
    email: str
    name: str
    prior: str | None  # None when the address was new
    requested_at: datetime  # the request the subscriber's row now answers to (``consent_at``)


def request_subscription(
    session: Session,
    email: str,
    *,
    consent: Consent,
    name: str | None = None,
    cadence: str | None = None,
    topics: Iterable[str] | None = None,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
    held: Held | None = None,
    record: bool = True,
) -> Requested:
    """A person asks to subscribe (the public form): what is stored, and their status before.

    Unlike ``add``, a suppressed address may come back: the person asked themselves, and the
    suppression is lifted when they confirm. An active subscriber's settings are left alone
    here; they change them through the preference centre, with a signed link. With ``record``
    false (a request past the confirmation cap) nothing changes either, so the link in the
    last confirmation mail sent stays the one that works.

    New, pending, active or gone, an address costs the same statements: the locked lookup
    (``held``, made here if not given) and one upsert that writes the row back, changed or not,
    so how long a request takes does not tell whether the address is subscribed.
    """
    address = normalize_email(email)
    held = held if held is not None else hold(session, address)
    now = utcnow()
    # Every value is parsed whatever the address's state: the same work, the same errors.
    asked: dict[str, object] = consent_values(consent)
    if name is not None:
        asked["name"] = clean_name(name)
    if cadence is not None:
        asked["cadence"] = parse_cadence(cadence)
    if topics is not None:
        asked["topics"] = parse_topics(list(topics))
    values = dict(held.row) if held.row is not None else _fresh(address, default_timezone,
                                                                default_send_hour, now)  # fmt: skip
    values.pop("id", None)
    if record and held.status != SubscriberStatus.ACTIVE.value:
        values.update(asked, updated_at=now)
        before = SubscriberStatus(str(values["status"]))
        after = next_status(before, Event.SUBSCRIBE)
        if after is not before:
            values.update(_stamps(after, now))
    upsert = _upsert(dialect_insert(session), tuple(sorted(values)))
    subscriber_id = int(session.execute(upsert, values).scalar_one())
    stale = session.identity_map.get(session.identity_key(Subscriber, subscriber_id))
    if stale is not None:
        session.expire(stale)  # an ORM copy loaded earlier in this session must be read again
    at = values["consent_at"] if isinstance(values["consent_at"], datetime) else consent.at
    return Requested(subscriber_id, address, str(values["name"]), held.status, at)


def confirm(session: Session, subscriber: Subscriber) -> bool:
    """The person followed their confirmation link; True when this changed their status."""
    before = subscriber.status
    _apply(session, subscriber, Event.CONFIRM, utcnow())
    if subscriber.status != before:
        # They asked themselves, so an old erase or bounce no longer holds them back.
        lift(session, subscriber.email)
    session.flush()
    return subscriber.status != before


def unsubscribe(session: Session, subscriber: Subscriber) -> bool:
    """Stop all mail to the subscriber now; True when this changed their status.

    Their queued and deferred deliveries are cancelled in the same transaction, so nothing
    already in the outbox reaches them afterwards.
    """
    before = subscriber.status
    _apply(session, subscriber, Event.UNSUBSCRIBE, utcnow())
    session.flush()
    return subscriber.status != before


def mark_bounced(session: Session, subscriber: Subscriber, *, complaint: bool = False) -> None:
    """A hard bounce or a complaint: stop mail and suppress the address for bulk imports."""
    _apply(session, subscriber, Event.COMPLAIN if complaint else Event.BOUNCE, utcnow())
    suppress(session, subscriber.email, "complaint" if complaint else "bounce")
    session.flush()


def record_bounce(
    session: Session, email: str, *, subscriber_id: int | None = None, complaint: bool = False
) -> bool:
    """A hard bounce of, or a complaint about, mail to ``email``: the subscriber it reached (by
    id when known, else by address) gets no more mail, and the address is suppressed either
    way. True when a subscriber's status changed; doing it twice changes nothing more.

    The subscriber is touched only while ``email`` is still their address: someone who changed
    their address since must not lose the new one to a bounce of the old.
    """
    person = session.get(Subscriber, subscriber_id) if subscriber_id else find(session, email)
    if person is None or person.email != email:
        suppress(session, email, "complaint" if complaint else "bounce")
        return False
    before = person.status
    mark_bounced(session, person, complaint=complaint)
    return person.status != before


def update_preferences(
    session: Session,
    subscriber: Subscriber,
    *,
    cadence: str | None = None,
    topics: str | Iterable[str] | None = None,
    timezone: str | None = None,
    send_hour: int | str | None = None,
    name: str | None = None,
) -> Subscriber:
    """Change what and when a subscriber receives; applies from the next edition.

    An absent or empty value keeps what they have (topics aside: choosing none is a choice).
    Every value is checked before any is changed, so a bad hour cannot half-save a form.
    """
    new_cadence = parse_cadence(cadence, subscriber.cadence)
    new_topics = parse_topics(topics) if topics is not None else None
    new_timezone = parse_timezone(timezone, subscriber.timezone)
    new_hour = parse_hour(send_hour, subscriber.send_hour)
    subscriber.cadence = new_cadence
    subscriber.timezone = new_timezone
    subscriber.send_hour = new_hour
    if new_topics is not None:
        subscriber.topics = new_topics
    if name is not None:
        subscriber.name = clean_name(name)
    subscriber.updated_at = utcnow()
    session.add(subscriber)
    session.flush()
    return subscriber


def erase(session: Session, email: str) -> None:
    """Delete everything digest holds about the person, keeping only their hash as suppressed.

    Their mail in the outbox goes too, whether it names them or only their address.
    """
    address = normalize_email(email)
    subscriber = find(session, address)
    if subscriber is None and not is_suppressed(session, address):
        raise SubscriberNotFound(f"no subscriber {address}")
    outbox.erase_for(
        session, subscriber_id=subscriber.id if subscriber is not None else None, address=address
    )
    if subscriber is not None:
        session.delete(subscriber)
    suppress(session, address, "erased")
    session.flush()


# -- internals -----------------------------------------------------------------------------------


def _new(session: Session, address: str, timezone: str, hour: int, now: datetime) -> Subscriber:
    subscriber = Subscriber(
        email=address, timezone=timezone, send_hour=hour, created_at=now, updated_at=now
    )
    session.add(subscriber)
    return subscriber


def _fresh(address: str, timezone: str, hour: int, now: datetime) -> dict[str, Any]:
    """The row of a new subscriber before their request is recorded on it: pending.

    Every column but the id, as a stored row has them: the upsert's statement must be the same
    for a new address as for a known one, or its timing tells them apart.
    """
    return {
        "email": address,
        "name": "",
        "status": SubscriberStatus.PENDING.value,
        "cadence": Cadence.DAILY.value,
        "topics": [],
        "timezone": timezone,
        "send_hour": hour,
        "created_at": now,
        "updated_at": now,
        "confirmed_at": None,
        "unsubscribed_at": None,
        "last_digest_at": None,
        "active_since": None,
        **dict.fromkeys(("consent_at", "consent_ip", "consent_user_agent", "consent_source")),
        "consent_wording": None,
    }


@functools.cache
def _upsert(dialect_insert: Any, columns: tuple[str, ...]) -> sa.Insert:
    """``INSERT ... ON CONFLICT (email) DO UPDATE ... RETURNING id``, built once per store."""
    insert = dialect_insert(_S)
    changed = {c: insert.excluded[c] for c in columns if c != "email"}
    return insert.on_conflict_do_update(index_elements=[_S.c.email], set_=changed).returning(
        _S.c.id
    )


def _record_consent(subscriber: Subscriber, consent: Consent) -> None:
    for field, value in consent_values(consent).items():
        setattr(subscriber, field, value)


def _stamps(after: SubscriberStatus, now: datetime) -> dict[str, object]:
    """The columns that change with a move to ``after``, besides the status itself."""
    stamps: dict[str, object] = {"status": after.value, "updated_at": now}
    if after is SubscriberStatus.ACTIVE:
        stamps.update(confirmed_at=now, unsubscribed_at=None, active_since=now)
    elif after is SubscriberStatus.PENDING:
        stamps["confirmed_at"] = None
    elif after is SubscriberStatus.UNSUBSCRIBED:
        stamps["unsubscribed_at"] = now
    return stamps


def _apply(session: Session, subscriber: Subscriber, event: Event, now: datetime) -> None:
    """Move the subscriber through the state machine and stamp the times that go with it."""
    before = SubscriberStatus(subscriber.status)
    after = next_status(before, event)
    if after is before:
        return
    for field, value in _stamps(after, now).items():
        setattr(subscriber, field, value)
    if after is not SubscriberStatus.ACTIVE and subscriber.id is not None:
        outbox.cancel_for(session, subscriber.id)
