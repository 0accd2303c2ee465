"""Double opt-in: ``GET /confirm/{token}`` shows a button, only ``POST`` confirms.

Mail security scanners open every link in a message with a GET; if that confirmed, anyone
could subscribe a victim whose provider scans links. The button is a form posting back here.
A link answers only the request it was sent for: once the address is asked for again, an
older mail's link says so (both GET and POST) and confirms nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from digest import subscribers, subscriptions
from digest.errors import InvalidToken
from digest.links_auth import linked_subscriber
from digest.states import SubscriberStatus
from digest.tokens import Purpose
from digest.web.deps import PagesDep, SessionDep, SettingsDep
from digest.web.zone_choice import confirmed_page
from digest.welcome import queue_welcomes

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
def confirm(
    token: str, request: Request, session: SessionDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """Confirm the subscription the token names, and welcome them to each newsletter it
    started (in the same transaction: a welcome goes only with a confirmation that holds)."""
    linked = linked_subscriber(session, settings, token, Purpose.CONFIRM)
    if linked is None:
        raise InvalidToken(SUPERSEDED)
    subscriber = linked.subscriber
    started = subscriptions.confirm(session, subscriber, linked.requested_at)
    queue_welcomes(session, settings, subscriber, started, renderers=request.app.state.renderers)
    asked = [
        s
        for s in subscribers.subscriptions_of(session, linked.id)
        if s.consent_at == linked.requested_at
    ]
    if not any(s.status == SubscriberStatus.ACTIVE.value for s in asked):
        # They left (or bounced) after asking; an old confirmation link must not undo that.
        raise InvalidToken("this subscription was ended since this link was sent; subscribe again")
    return confirmed_page(
        pages, settings, session, linked
    )  # with their timezone, to change it there
