"""The state machine of a subscription: which event moves a subscriber from which status to which.

Pure: the store (``subscribers.py``) asks ``next_status`` and writes the answer.
"""

from __future__ import annotations

from enum import StrEnum

from digest.states import SubscriberStatus as S


class Event(StrEnum):
    """What can happen to a subscription."""

    SUBSCRIBE = "subscribe"  # the person asked (form, API); needs confirming
    CONFIRM = "confirm"  # the person followed the confirmation link
    ADD_CONFIRMED = "add_confirmed"  # an operator adds someone whose consent they hold
    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"  # a hard bounce
    COMPLAIN = "complain"  # a spam complaint (feedback loop)
    RETIRE = "retire"  # list hygiene: no reading for long, no answer to "still want this?"
    STAY = "stay"  # the reader answered "still want this?" (or came back after retiring)


# (from, event) -> to. A pair not listed leaves the status as it is: unsubscribing twice, or
# confirming an active subscription, is not an error, it is a no-op.
_TRANSITIONS: dict[tuple[S, Event], S] = {
    (S.PENDING, Event.CONFIRM): S.ACTIVE,
    (S.PENDING, Event.ADD_CONFIRMED): S.ACTIVE,
    (S.PENDING, Event.UNSUBSCRIBE): S.UNSUBSCRIBED,
    (S.PENDING, Event.BOUNCE): S.BOUNCED,
    (S.PENDING, Event.COMPLAIN): S.COMPLAINED,
    (S.ACTIVE, Event.UNSUBSCRIBE): S.UNSUBSCRIBED,
    (S.ACTIVE, Event.BOUNCE): S.BOUNCED,
    (S.ACTIVE, Event.COMPLAIN): S.COMPLAINED,
    # Leaving is final until the person asks again themselves, and asking again means a new
    # confirmation: the old consent was withdrawn.
    (S.UNSUBSCRIBED, Event.SUBSCRIBE): S.PENDING,
    (S.UNSUBSCRIBED, Event.ADD_CONFIRMED): S.ACTIVE,
    (S.BOUNCED, Event.SUBSCRIBE): S.PENDING,
    (S.BOUNCED, Event.ADD_CONFIRMED): S.ACTIVE,
    (S.COMPLAINED, Event.SUBSCRIBE): S.PENDING,
    (S.UNSUBSCRIBED, Event.COMPLAIN): S.COMPLAINED,
    # Retiring is the list's decision, not the reader's: their own word brings them back at
    # once (their consent was never withdrawn), and they still leave or complain as anyone.
    (S.ACTIVE, Event.RETIRE): S.INACTIVE,
    (S.INACTIVE, Event.STAY): S.ACTIVE,
    (S.INACTIVE, Event.SUBSCRIBE): S.PENDING,
    (S.INACTIVE, Event.ADD_CONFIRMED): S.ACTIVE,
    (S.INACTIVE, Event.UNSUBSCRIBE): S.UNSUBSCRIBED,
    (S.INACTIVE, Event.BOUNCE): S.BOUNCED,
    (S.INACTIVE, Event.COMPLAIN): S.COMPLAINED,
}


def next_status(current: S | str, event: Event) -> S:
    """The status after ``event``; unchanged where the event does not apply."""
    status = S(current)
    return _TRANSITIONS.get((status, event), status)


def needs_confirmation_mail(status: S | str | None) -> bool:
    """Whether a subscribe request for an address in this status sends a confirmation mail.

    A new, pending or unsubscribed address gets one; an active one gets nothing new, and the
    answer to the request is the same either way.
    """
    return status is None or S(status) in (
        S.PENDING,
        S.UNSUBSCRIBED,
        S.BOUNCED,
        S.COMPLAINED,
        S.INACTIVE,
    )
