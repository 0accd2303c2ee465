"""Readers' opt-in to a newsletter's breaking-news alerts: turning it on and off, and what an
alert's one-click link does.

Opting in is per subscription (``subscriptions.alerts``, off until the reader asks). A
newsletter that stops offering alerts keeps its readers' opt-ins: they apply again if it offers
them again, and meanwhile no alert is raised for it (the alert lane reads ``newsletters.alerts``).
Turning alerts off keeps the subscription and its digest, and cancels the alerts of that
newsletter still waiting in the outbox, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col

from digest.alert_timing import alert_key_prefix
from digest.clock import utcnow
from digest.models import Delivery, Newsletter, Subscriber, Subscription
from digest.states import DeliveryStatus
from digest.subscribers import subscription_of


def offers_alerts(session: Session, newsletter_id: int) -> bool:
    """Whether the newsletter offers breaking-news alerts (False when there is none)."""
    newsletter = session.get(Newsletter, newsletter_id)
    return newsletter is not None and bool(newsletter.alerts)


def cancel_alerts(session: Session, subscriber_id: int, newsletter_id: int) -> int:
    """Cancel the newsletter's alerts to the reader that have not gone out (queued or
    deferred); how many. Held ones are left to the digest they will be folded into."""
    result = session.execute(
        sa.update(Delivery)
        .where(
            col(Delivery.subscriber_id) == subscriber_id,
            col(Delivery.period_key).startswith(alert_key_prefix(newsletter_id)),
            col(Delivery.status).in_([DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value]),
        )
        .values(status=DeliveryStatus.CANCELLED.value, updated_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_alerts(session: Session, sub: Subscription, on: bool) -> bool:
    """Opt the subscription in or out of its newsletter's alerts; True when this changed it.

    Opting out also cancels its alerts still in the outbox: the reader said no more.
    """
    changed = bool(sub.alerts) != on
    if changed:
        sub.alerts = on
        sub.updated_at = utcnow()
        session.add(sub)
        session.flush()
    if not on:
        cancel_alerts(session, sub.subscriber_id, sub.newsletter_id)
    return changed


@dataclass(frozen=True)
class AlertsOff:
    """What an alerts-off link is about: the newsletter's name, and whether the reader still
    has its alerts on."""

    name: str
    on: bool


def alerts_state(session: Session, person: Subscriber, newsletter_id: int) -> AlertsOff:
    """The newsletter an alerts-off link names, and whether the person's alerts from it are on."""
    newsletter = session.get(Newsletter, newsletter_id)
    name = newsletter.name if newsletter is not None else "this newsletter"
    sub = subscription_of(session, int(person.id or 0), newsletter_id)
    return AlertsOff(name, sub is not None and bool(sub.alerts))


def turn_off(session: Session, person: Subscriber, newsletter_id: int) -> AlertsOff:
    """An alert's one-click link: no more alerts from the newsletter, the digest kept.

    Idempotent: a second click (or a reader who never opted in) changes nothing, and answers
    the same. Returns the state after, for the page that says so.
    """
    sub = subscription_of(session, int(person.id or 0), newsletter_id)
    if sub is not None:
        set_alerts(session, sub, False)
    else:
        cancel_alerts(session, int(person.id or 0), newsletter_id)
    return alerts_state(session, person, newsletter_id)
