"""What an editor does to a person from the desk, each change audited with its values before
and after, in the caller's transaction: unsubscribe from a newsletter, change a subscription's
cadence and topics, erase the person.

The audit names a person by id (``subscriber:12``), never by address: an entry outlives an
erasure, and the erasure's own entry keeps only the hash the suppression list keeps.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from digest import audit, subscribers, subscriptions
from digest.addresses import email_hash, normalize_email
from digest.audit import Actor
from digest.errors import InvalidEmail, InvalidInput, SubscriberNotFound
from digest.models import Subscriber, Subscription
from digest.subscriber_fields import parse_cadence, parse_topics
from digest.subscribers import Reader


def target(person: Subscriber) -> str:
    """How the audit log names a person: by id, which is never reused."""
    return f"subscriber:{person.id}"


def _subscription(session: Session, person: Subscriber, newsletter_id: int) -> Subscription:
    found = subscribers.subscription_of(session, int(person.id or 0), newsletter_id)
    if found is None:
        raise SubscriberNotFound(f"subscriber #{person.id} is not on newsletter #{newsletter_id}")
    return found


def _state(sub: Subscription) -> dict[str, Any]:
    return {
        "newsletter_id": sub.newsletter_id,
        "status": sub.status,
        "cadence": sub.cadence,
        "topics": list(sub.topics or []),
    }


def unsubscribe(session: Session, actor: Actor, person: Subscriber, newsletter_id: int) -> bool:
    """Take the person off one newsletter (their queued mail of it cancelled); True when this
    changed their status. Audited either way: someone asked for it."""
    sub = _subscription(session, person, newsletter_id)
    before = _state(sub)
    changed = subscriptions.unsubscribe(session, person, newsletter_id)
    audit.record(
        session, actor, "subscriber.unsubscribe", target(person), before=before, after=_state(sub)
    )
    return changed


def change_preferences(
    session: Session,
    actor: Actor,
    person: Subscriber,
    newsletter_id: int,
    *,
    cadence: str,
    topics: str,
) -> Subscription:
    """Set one subscription's cadence and topics (empty topics: all of them); InvalidInput
    before anything changes when a value is wrong."""
    sub = _subscription(session, person, newsletter_id)
    parse_cadence(cadence)  # checked before anything changes
    parse_topics(topics)
    before = _state(sub)
    subscriptions.update_preferences(session, Reader(person, sub), cadence=cadence, topics=topics)
    audit.record(
        session, actor, "subscriber.preferences", target(person), before=before, after=_state(sub)
    )
    return sub


def confirms(person: Subscriber, typed: str) -> bool:
    """Whether ``typed`` is the person's address (any case, surrounding spaces ignored)."""
    try:
        return normalize_email(typed) == person.email
    except InvalidEmail:
        return False


def erase(session: Session, actor: Actor, person: Subscriber, typed: str) -> str:
    """Erase the person as ``digest subscribers erase`` does, once ``typed`` is their address;
    the hash the audit and the suppression list keep. InvalidInput (nothing changed) when the
    typed address is not theirs."""
    if not confirms(person, typed):
        raise InvalidInput("Type the person's address exactly to confirm the erasure.")
    hashed = email_hash(person.email)
    before = {
        "subscriber": person.id,
        "email_hash": hashed,
        "subscriptions": len(subscribers.subscriptions_of(session, int(person.id or 0))),
    }
    subscribers.erase(session, person.email)
    audit.record(
        session,
        actor,
        "subscriber.erase",
        f"email_hash:{hashed}",
        before=before,
        after={"suppressed": "erased"},
    )
    return hashed
