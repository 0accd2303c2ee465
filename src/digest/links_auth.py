"""Turning a link's token into the subscriber it names, or a clear reason why not.

Shared by the confirm, unsubscribe and preferences routes: the signature and purpose are
checked first, then the subscriber is loaded and the token's address tag compared with their
current address, so a token never acts on whoever holds that id now.
"""

from __future__ import annotations

from sqlmodel import Session

from digest.config import Settings
from digest.models import Subscriber
from digest.tokens import Purpose, matches, verify


def subscriber_for(
    session: Session, settings: Settings, token: str, purpose: Purpose
) -> Subscriber | None:
    """The token's subscriber; None when the signature holds but they are gone (erased).

    A forged, malformed, expired or wrong-purpose token raises InvalidToken/TokenExpired.
    """
    subscriber_id, tag = verify(settings.secret, token, purpose)
    if subscriber_id < 1 or subscriber_id > 2**31 - 1:
        return None
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or not matches(tag, subscriber.email):
        return None
    return subscriber
