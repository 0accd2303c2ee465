"""Leaving, RFC 8058 style: a POST to the link unsubscribes at once, a GET only asks.

Mail providers send ``List-Unsubscribe=One-Click`` as a POST without cookies and follow no
redirects, so the POST answers 200 itself. Link scanners fetch GETs, so a GET never
unsubscribes. Unsubscribe tokens do not expire: an old mail's link must keep working.

A genuine token whose subscriber was erased answers 200 with "no longer on our list" for GET
and POST alike: what the person wanted (no more mail) is already true, and a mail client's
one-click POST must not be told it failed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from digest import preference_centre, subscriptions
from digest.config import Settings
from digest.db import Database
from digest.links import preferences_url
from digest.links_auth import linked_subscriber
from digest.tokens import Purpose
from digest.web import alerts_off
from digest.web.deps import DatabaseDep, PagesDep, SessionDep, SettingsDep
from digest.web.pages import wants_json

router = APIRouter(tags=["unsubscribe"], include_in_schema=False)


@router.get("/unsubscribe/{token}")
def unsubscribe_page(
    token: str, session: SessionDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """The page with the unsubscribe button and a way to change preferences instead."""
    linked = linked_subscriber(session, settings, token, Purpose.UNSUBSCRIBE)
    if linked is None:
        return pages.render("gone")
    if linked.alerts_only:
        return alerts_off.alerts_page(session, settings, pages, linked, f"/unsubscribe/{token}")
    subscriber = linked.subscriber
    scope = preference_centre.leaving(session, linked.subscriber, linked.newsletter_id)
    return pages.render(
        "unsubscribe",
        action=f"/unsubscribe/{token}",
        email=subscriber.email,
        leaving=scope.name,
        already=not scope.active,
        preferences_url=preferences_url(settings, linked.id, subscriber.email),
    )


@router.post("/unsubscribe/{token}")
async def unsubscribe(
    token: str, request: Request, db: DatabaseDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """Unsubscribe now, idempotently: the one-click POST and the page's button alike.

    The body is read (within the size cap) but not required: whatever a mail client sends with
    its POST, a valid token is all the withdrawal of consent needs.
    """
    await request.body()
    done = await run_in_threadpool(_unsubscribe, db, settings, token)
    if isinstance(done, alerts_off.AlertsOffDone):
        if wants_json(request):
            return JSONResponse({"status": "alerts off"})
        return pages.render("alerts_off_done", **asdict(done))
    if wants_json(request):
        return JSONResponse({"status": "unsubscribed"})
    if done is None:
        return pages.render("gone")
    return pages.render("unsubscribed", **asdict(done))


@dataclass(frozen=True)
class Done:
    """What the "unsubscribed" page says: who left what, and what they are still on."""

    email: str
    left: str | None  # a newsletter's name; None: every newsletter
    remaining: list[str]
    preferences_url: str


def _unsubscribe(
    db: Database, settings: Settings, token: str
) -> Done | alerts_off.AlertsOffDone | None:
    """Unsubscribe the token's subscriber (committed on return), or turn off the alerts an
    alert's link names; what to tell them, or None."""
    with db.transaction() as session:
        linked = linked_subscriber(session, settings, token, Purpose.UNSUBSCRIBE)
        if linked is None:
            return None
        if linked.alerts_only:
            return alerts_off.turn_off(session, settings, linked)
        person = linked.subscriber
        subscriptions.unsubscribe(session, person, linked.newsletter_id)
        return Done(
            person.email,
            preference_centre.leaving(session, person, linked.newsletter_id).name,
            preference_centre.remaining(session, person),
            preferences_url(settings, linked.id, person.email),
        )
