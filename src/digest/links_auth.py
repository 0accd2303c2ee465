"""Turning a link's token into the subscriber it names, or a clear reason why not.

Shared by the confirm, unsubscribe and preferences routes: the signature and purpose are
checked first, then the subscriber is loaded and the token's address tag compared with their
current address, so a token never acts on whoever holds that id now. A confirmation token must
also name the subscriber's latest request (``consent_at``): an older mail's link is dead.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from digest.config import Settings
from digest.models import Subscriber
from digest.tokens import Purpose, matches, verify


@dataclass(frozen=True)
class Linked:
    """A link's subscriber with the id their token names: the row was loaded by that id."""

    id: int
    subscriber: Subscriber


def linked_subscriber(
    session: Session, settings: Settings, token: str, purpose: Purpose
) -> Linked | None:
    """The token's subscriber and id; None when the signature holds but they are gone (erased),
    or, for a confirmation, asked again since (the link answered an older request).

    A forged, malformed, expired or wrong-purpose token raises InvalidToken/TokenExpired.
    """
    subscriber_id, tag = verify(settings.secret, token, purpose)
    if subscriber_id < 1 or subscriber_id > 2**31 - 1:
        return None
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    bound_to = subscriber.consent_at if purpose is Purpose.CONFIRM else None
    if not matches(tag, subscriber.email, bound_to):
        return None
    return Linked(subscriber_id, subscriber)


def subscriber_for(
    session: Session, settings: Settings, token: str, purpose: Purpose
) -> Subscriber | None:
    """``linked_subscriber`` for a caller that needs only the row."""
    linked = linked_subscriber(session, settings, token, purpose)
    return linked.subscriber if linked is not None else None
