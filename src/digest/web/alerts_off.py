"""An alert's one-click link: the unsubscribe route, with a token scoped to one newsletter's
alerts (``links.alerts_off_url``), turns off those alerts and keeps the digest.

As for leaving (``web/unsubscribe.py``, which hands such tokens here): the POST acts at once
and answers 200 without a redirect (RFC 8058: mail clients send it without cookies and follow
no redirect); a GET only asks, because link scanners fetch GETs.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response
from sqlmodel import Session

from digest import alert_optin
from digest.config import Settings
from digest.links import preferences_url
from digest.links_auth import Linked
from digest.newsletters import FIRST
from digest.web.pages import Pages


@dataclass(frozen=True)
class AlertsOffDone:
    """What the "alerts off" page says: whose alerts from which newsletter, now off."""

    email: str
    newsletter: str
    preferences_url: str


def alerts_page(
    session: Session, settings: Settings, pages: Pages, linked: Linked, action: str
) -> Response:
    """The page asking to confirm: "Turn off breaking-news alerts from ...?"."""
    person = linked.subscriber
    state = alert_optin.alerts_state(session, person, linked.newsletter_id or FIRST)
    return pages.render(
        "alerts_off",
        action=action,
        email=person.email,
        newsletter=state.name,
        already=not state.on,
        preferences_url=preferences_url(settings, linked.id, person.email),
    )


def turn_off(session: Session, settings: Settings, linked: Linked) -> AlertsOffDone:
    """Turn the link's alerts off (and cancel those still queued) in the caller's transaction."""
    person = linked.subscriber
    state = alert_optin.turn_off(session, person, linked.newsletter_id or FIRST)
    return AlertsOffDone(
        person.email, state.name, preferences_url(settings, linked.id, person.email)
    )
