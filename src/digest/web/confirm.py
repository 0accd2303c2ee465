"""Double opt-in: ``GET /confirm/{token}`` shows a button, only ``POST`` confirms.

Mail security scanners open every link in a message with a GET; if that confirmed, anyone
could subscribe a victim whose provider scans links. The button is a form posting back here.
A link answers only the request it was sent for: once the address is asked for again, an
older mail's link says so (both GET and POST) and confirms nothing.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from digest import subscribers
from digest.errors import InvalidToken
from digest.links import preferences_url
from digest.links_auth import linked_subscriber
from digest.states import SubscriberStatus
from digest.tokens import Purpose
from digest.web.deps import PagesDep, SessionDep, SettingsDep

router = APIRouter(tags=["confirm"], include_in_schema=False)


SUPERSEDED = (
    "this confirmation link is no longer valid: the address was asked for again since (use the "
    "link in the newest mail) or removed; you can ask for a fresh link here"
)


@router.get("/confirm/{token}")
def confirm_page(
    token: str, session: SessionDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """The page with the confirm button; it changes nothing."""
    if linked_subscriber(session, settings, token, Purpose.CONFIRM) is None:
        raise InvalidToken(SUPERSEDED)
    return pages.render("confirm", action=f"/confirm/{token}")


@router.post("/confirm/{token}")
def confirm(token: str, session: SessionDep, settings: SettingsDep, pages: PagesDep) -> Response:
    """Confirm the subscription the token names."""
    linked = linked_subscriber(session, settings, token, Purpose.CONFIRM)
    if linked is None:
        raise InvalidToken(SUPERSEDED)
    subscriber = linked.subscriber
    subscribers.confirm(session, subscriber)
    if subscriber.status != SubscriberStatus.ACTIVE.value:
        # They left (or bounced) after asking; an old confirmation link must not undo that.
        raise InvalidToken("this subscription was ended since this link was sent; subscribe again")
    return pages.render(
        "confirmed", preferences_url=preferences_url(settings, linked.id, subscriber.email)
    )
