"""A person's request to join newsletters, as the store records it: the same statements for a
new, pending, active or departed address, so how long it takes tells nothing.

The subscribe use case around it (the cap, the confirmation mail) is ``signup.py``; how the
subscriptions then change state is ``subscriptions.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from digest.addresses import clean_name, normalize_email
from digest.alert_optin import offers_alerts
from digest.clock import utcnow
from digest.db import dialect_insert
from digest.lifecycle import Event, next_status
from digest.models import Newsletter, Subscriber, Subscription
from digest.newsletters import FIRST
from digest.states import Cadence, SubscriberStatus
from digest.subscriber_fields import (
    Consent,
    consent_values,
    parse_cadence,
    parse_timezone,
    parse_topics,
)
from digest.subscribers import Held, hold
from digest.subscriptions import stamps
from digest.webhook_events import requested

_S = Subscriber.__table__  # type: ignore[attr-defined]
_U = Subscription.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Requested:
    """A subscribe request as stored: the person's id, address, name, and, per newsletter
    asked for, the status it had before (None: new)."""

    subscriber_id: int
    email: str
    name: str
    prior: dict[int, str | None]
    requested_at: datetime  # the request the subscriptions now answer to (their ``consent_at``)


def held_subscriptions(
    session: Session, held: Held, newsletter_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The held person's subscriptions to these newsletters as stored, by newsletter.

    Asked for a new address too (``held.id`` 0 names nobody): every request runs it.
    """
    rows = session.execute(
        sa.select(_U).where(
            _U.c.subscriber_id == held.id, _U.c.newsletter_id.in_(list(newsletter_ids))
        )
    ).mappings()
    return {int(r["newsletter_id"]): dict(r) for r in rows}


def prior_statuses(
    session: Session, held: Held, newsletter_ids: Sequence[int]
) -> dict[int, str | None]:
    """The status of each asked-for subscription of the held person before the request."""
    found = held_subscriptions(session, held, newsletter_ids)
    return {nid: (found[nid]["status"] if nid in found else None) for nid in newsletter_ids}


def request_subscription(
    session: Session,
    email: str,
    *,
    consent: Consent,
    newsletter_ids: Sequence[int] = (FIRST,),
    name: str | None = None,
    cadence: str | None = None,
    topics: Iterable[str] | None = None,
    timezone: str | None = None,
    default_timezone: str = "UTC",
    default_send_hour: int = 7,
    held: Held | None = None,
    prior: dict[int, str | None] | None = None,
    record: bool = True,
    alerts: bool | None = None,
) -> Requested:
    """A person asks to join newsletters (the public form): what is stored, and the statuses
    before.

    Unlike ``add``, a suppressed address may come back: the person asked themselves, and the
    suppression is lifted when they confirm. An active subscription's settings are left alone
    here; they change them through the preference centre, with a signed link. With ``record``
    false (a request past the confirmation cap) nothing changes either, so the link in the
    last confirmation mail sent stays the one that works. ``name`` and ``timezone`` apply to a
    new person only: nobody changes a known reader's without their link. ``alerts`` (None:
    not asked) opts in to the alerts of those newsletters that offer them, like the cadence.

    New, pending, active or gone, an address costs the same statements: the locked lookup
    (``held``), one upsert of the person and one per newsletter asked for, each writing its
    row back, changed or not, so how long a request takes does not tell who is subscribed.
    """
    address = normalize_email(email)
    held = held if held is not None else hold(session, address)
    prior = prior if prior is not None else prior_statuses(session, held, newsletter_ids)
    now = utcnow()
    # Every value is parsed whatever the address's state: the same work, the same errors.
    asked: dict[str, object] = consent_values(consent)
    if cadence is not None:
        asked["cadence"] = parse_cadence(cadence)
    if topics is not None:
        asked["topics"] = parse_topics(list(topics))
    zone = parse_timezone(timezone, default_timezone)
    fresh = _fresh_person(address, zone, default_send_hour, now)
    person = dict(held.row) if held.row is not None else fresh
    person.pop("id", None)
    # What the person's newsletters share (name, zone) is set by the request that makes them:
    # a stranger typing a known address changes nothing of it. Readers change theirs behind
    # their own links (the preference centre, the confirmed page).
    if record and held.row is None and name is not None:
        person["name"] = clean_name(name)
    upsert = _upsert(dialect_insert(session), _S, ("email",), tuple(sorted(person)))
    subscriber_id = int(session.execute(upsert, person).scalar_one())
    _expire(session, Subscriber, subscriber_id)
    rows = held_subscriptions(session, held, newsletter_ids)
    recorded = False
    earlier: list[tuple[bool, datetime]] = []  # (pending?, when) of the requests left standing
    moved: dict[int, bool] = {}  # per newsletter asked for: did it become pending?
    for nid in newsletter_ids:
        offered = _cadences(session, nid)
        # Read for every address (the newsletter row is already in the session): same work.
        alerts_offered = offers_alerts(session, nid)
        values = rows.get(nid) or _fresh_subscription(subscriber_id, nid, offered[0], now)
        values.pop("id", None)
        status = prior.get(nid)
        moved[nid] = False
        if record and status != SubscriberStatus.ACTIVE.value:
            # The cadence asked for where the newsletter offers it, else its default.
            wanted = {k: v for k, v in asked.items() if k != "cadence" or v in offered}
            if alerts is not None:
                wanted["alerts"] = alerts and alerts_offered
            values.update(wanted, updated_at=now)
            before = SubscriberStatus(str(values["status"]))
            after = next_status(before, Event.SUBSCRIBE)
            if after is not before:
                values.update(stamps(after, now))
            moved[nid] = after is SubscriberStatus.PENDING and (after is not before or not status)
            recorded = True
        elif isinstance(values.get("consent_at"), datetime):
            pending = values["status"] == SubscriberStatus.PENDING.value
            earlier.append((pending, values["consent_at"]))
        upsert = _upsert(
            dialect_insert(session), _U, ("subscriber_id", "newsletter_id"), tuple(sorted(values))
        )
        sub_id = int(session.execute(upsert, values).scalar_one())
        _expire(session, Subscription, sub_id)
    requested(session, address, moved, now)  # the same statements whatever moved
    # The confirmation link answers this request when it recorded something, else the
    # standing request it resends (a pending one's first).
    requested_at = consent.at if recorded or not earlier else max(earlier)[1]
    return Requested(subscriber_id, address, str(person["name"]), prior, requested_at)


def _cadences(session: Session, newsletter_id: int) -> list[str]:
    """The cadences a newsletter offers, its default first."""
    newsletter = session.get(Newsletter, newsletter_id)
    if newsletter is None:
        return [Cadence.DAILY.value]
    offered = list(newsletter.cadences or [c.value for c in Cadence])
    default = newsletter.default_cadence if newsletter.default_cadence in offered else offered[0]
    return [default, *(c for c in offered if c != default)]


def _fresh_person(address: str, timezone: str, hour: int, now: datetime) -> dict[str, Any]:
    """The row of a new person, every column but the id, as a stored row has them: the upsert's
    statement must be the same for a new address as for a known one, or its timing tells."""
    return {
        "email": address,
        "name": "",
        "timezone": timezone,
        "send_hour": hour,
        "tracking_opt_out": False,
        "created_at": now,
        "updated_at": now,
    }


def _fresh_subscription(
    subscriber_id: int, newsletter_id: int, cadence: str, now: datetime
) -> dict[str, Any]:
    """A new subscription before the request is recorded on it: pending, every column."""
    return {
        "subscriber_id": subscriber_id,
        "newsletter_id": newsletter_id,
        "status": SubscriberStatus.PENDING.value,
        "cadence": cadence,
        "topics": [],
        "created_at": now,
        "updated_at": now,
        "confirmed_at": None,
        "unsubscribed_at": None,
        "last_digest_at": None,
        "active_since": None,
        "alerts": False,
        # Migration 0014's columns: a new row must name every column a stored one has.
        "last_click_at": None,
        "repermission_sent_at": None,
        **dict.fromkeys(("consent_at", "consent_ip", "consent_user_agent", "consent_source")),
        "consent_wording": None,
    }


@functools.cache
def _upsert(
    dialect_insert: Any, table: sa.Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> sa.Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE ... RETURNING id``, built once per store."""
    insert = dialect_insert(table)
    changed = {c: insert.excluded[c] for c in columns if c not in keys}
    return insert.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys], set_=changed
    ).returning(table.c.id)


def _expire(session: Session, model: type, row_id: int) -> None:
    """An ORM copy loaded earlier in this session must be read again after a plain upsert."""
    stale = session.identity_map.get(session.identity_key(model, row_id))
    if stale is not None:
        session.expire(stale)
