"""What an editor does to a person from the desk, each change audited with its values before
and after, in the caller's transaction: unsubscribe from a newsletter, change a subscription's
cadence and topics, erase the person.

The audit names a person by address, as the CLI and the admin API do (``audit_states``), and
an erasure renames those entries to the hash and drops their before/after (``audit.forget``);
the erasure's own entry names only the hash the suppression list keeps.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from digest import audit, subscribers, subscriptions
from digest.addresses import email_hash, normalize_email
from digest.audit import Actor
from digest.audit_states import state_of
from digest.errors import InvalidEmail, InvalidInput, SubscriberNotFound
from digest.models import Subscriber, Subscription
from digest.subscriber_fields import parse_cadence, parse_topics
from digest.subscribers import Reader


def target(person: Subscriber) -> str:
    """How the audit log names a person until they are erased: their address."""
    return person.email


def _subscription(session: Session, person: Subscriber, newsletter_id: int) -> Subscription:
    found = subscribers.subscription_of(session, int(person.id or 0), newsletter_id)
    if found is None:
        raise SubscriberNotFound(f"subscriber #{person.id} is not on newsletter #{newsletter_id}")
    return found


def _state(person: Subscriber, sub: Subscription) -> dict[str, Any]:
    # What the CLI and the API record of a reader, and which newsletter.
    return {"newsletter_id": sub.newsletter_id} | state_of(Reader(person, sub))


def unsubscribe(session: Session, actor: Actor, person: Subscriber, newsletter_id: int) -> bool:
    """Take the person off one newsletter (their queued mail of it cancelled); True when this
    changed their status. Audited either way: someone asked for it."""
    sub = _subscription(session, person, newsletter_id)
    before = _state(person, sub)
    changed = subscriptions.unsubscribe(session, person, newsletter_id)
    after = _state(person, sub)
    who = target(person)
    audit.record(session, actor, "subscriber.unsubscribe", who, before=before, after=after)
    return changed


def preference_errors(cadence: str, topics: str) -> dict[str, str]:
    """What is wrong with a cadence and topics typed in a form, by field (empty: nothing)."""
    errors: dict[str, str] = {}
    for field, check in (
        ("cadence", lambda: parse_cadence(cadence)),
        ("topics", lambda: parse_topics(topics)),
    ):
        try:
            check()
        except InvalidInput as exc:
            errors[field] = str(exc)
    return errors


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
    wrong = preference_errors(cadence, topics)  # checked before anything changes
    if wrong:
        raise InvalidInput(" ".join(wrong.values()))
    before = _state(person, sub)
    subscriptions.update_preferences(session, Reader(person, sub), cadence=cadence, topics=topics)
    after = _state(person, sub)
    who = target(person)
    audit.record(session, actor, "subscriber.preferences", who, before=before, after=after)
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
    before = {"subscriptions": len(subscribers.subscriptions_of(session, int(person.id or 0)))}
    subscribers.erase(session, person.email)
    audit.record(
        session,
        actor,
        "subscriber.erase",
        hashed,
        before=before,
        after={"suppressed": "erased"},
    )
    return hashed
