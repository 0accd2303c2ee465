"""Turning a link's token into the subscriber it names, or a clear reason why not.

Shared by the confirm, unsubscribe and preferences routes: the signature and purpose are
checked first, then the subscriber is loaded and the token's address tag compared with their
current address, so a token never acts on whoever holds that id now. A confirmation token must
also name the subscriber's latest request (``consent_at``): an older mail's link is dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from digest.config import Settings
from digest.links import ALERTS_SCOPE, ALL
from digest.models import Subscriber, Subscription
from digest.newsletters import FIRST
from digest.tokens import Purpose, matches, verify_scoped


@dataclass(frozen=True)
class Linked:
    """A link's subscriber with the id their token names: the row was loaded by that id.

    ``newsletter_id`` is the newsletter an unsubscribe link leaves (None: all of them; a link
    made before there were several newsletters leaves the first); ``alerts_only`` says it
    turns off only that newsletter's breaking-news alerts (an alert's link); ``requested_at``
    the request a confirmation link answers.
    """

    id: int
    subscriber: Subscriber
    newsletter_id: int | None = FIRST
    requested_at: datetime | None = None
    alerts_only: bool = False


def linked_subscriber(
    session: Session, settings: Settings, token: str, purpose: Purpose
) -> Linked | None:
    """The token's subscriber and id; None when the signature holds but they are gone (erased),
    or, for a confirmation, asked again since (the link answered an older request).

    A forged, malformed, expired or wrong-purpose token raises InvalidToken/TokenExpired.
    """
    subscriber_id, tag, scope = verify_scoped(settings.secret, token, purpose)
    if subscriber_id < 1 or subscriber_id > 2**31 - 1:
        return None
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    newsletter_id = _newsletter(scope)
    if purpose is not Purpose.CONFIRM:
        if not matches(tag, subscriber.email):
            return None
        alerts_only = scope is not None and scope.startswith(ALERTS_SCOPE)
        return Linked(subscriber_id, subscriber, newsletter_id, alerts_only=alerts_only)
    # A confirmation answers one request: the moment its subscriptions were asked for (none
    # for a subscription an operator added, whose link was made without one).
    moments = session.exec(
        select(Subscription.consent_at).where(Subscription.subscriber_id == subscriber_id)
    ).all()
    for moment in set(moments):
        if matches(tag, subscriber.email, moment):
            return Linked(subscriber_id, subscriber, newsletter_id, moment)
    return None


def _newsletter(scope: str | None) -> int | None:
    """The newsletter a token's scope names; None for every one."""
    if scope is None:
        return FIRST
    if scope == ALL:
        return None
    scope = scope.removeprefix(ALERTS_SCOPE)
    return int(scope) if scope.isdigit() else FIRST


def subscriber_for(
    session: Session, settings: Settings, token: str, purpose: Purpose
) -> Subscriber | None:
    """``linked_subscriber`` for a caller that needs only the row."""
    linked = linked_subscriber(session, settings, token, purpose)
    return linked.subscriber if linked is not None else None
