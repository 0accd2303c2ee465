"""The preference centre: cadence, topics, timezone and send hour, behind a signed link.

A change applies from the next edition: deliveries already queued keep what they were made
with.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from digest import subscribers
from digest.config import Settings
from digest.db import Database
from digest.errors import InvalidInput
from digest.links import unsubscribe_url
from digest.links_auth import Linked, linked_subscriber
from digest.posts.topics import known_topics
from digest.tokens import Purpose
from digest.web.deps import DatabaseDep, PagesDep, SessionDep, SettingsDep
from digest.web.forms import Fields, first, read_fields
from digest.web.pages import Pages

router = APIRouter(tags=["preferences"], include_in_schema=False)

COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Moscow",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)


def _form(
    pages: Pages,
    settings: Settings,
    linked: Linked,
    token: str,
    topics: list[str],
    *,
    status: int = 200,
    error: str | None = None,
    saved: bool = False,
) -> Response:
    subscriber = linked.subscriber
    choices = topics + [t for t in subscriber.topics if t not in topics]
    return pages.render(
        "preferences",
        status=status,
        action=f"/preferences/{token}",
        subscriber=subscriber,
        topic_choices=choices,
        zones=COMMON_ZONES,
        hours=range(24),
        error=error,
        saved=saved,
        unsubscribe_action=unsubscribe_url(settings, linked.id, subscriber.email).removeprefix(
            settings.base_url
        ),
    )


@router.get("/preferences/{token}")
def preferences_page(
    token: str, session: SessionDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """The preference form, filled with the subscriber's current choices."""
    linked = linked_subscriber(session, settings, token, Purpose.PREFERENCES)
    if linked is None:
        return pages.render("gone", status=404)
    topics = known_topics(session, featuring=settings.featured_categories)
    return _form(pages, settings, linked, token, topics)


@router.post("/preferences/{token}")
async def save_preferences(
    token: str, request: Request, db: DatabaseDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """Save the form; a bad value shows the form again with the reason (422)."""
    fields = await read_fields(request, allow_json=False)
    return await run_in_threadpool(_save, db, settings, pages, token, fields)


def _save(db: Database, settings: Settings, pages: Pages, token: str, fields: Fields) -> Response:
    with db.transaction() as session:
        linked = linked_subscriber(session, settings, token, Purpose.PREFERENCES)
        if linked is None:
            return pages.render("gone", status=404)
        topics = known_topics(session, featuring=settings.featured_categories)
        zone = (first(fields, "timezone_other") or "").strip() or first(fields, "timezone")
        try:
            subscribers.update_preferences(
                session,
                linked.subscriber,
                cadence=first(fields, "cadence"),
                topics=fields.get("topics", []),
                timezone=zone,
                send_hour=first(fields, "send_hour"),
            )
        except InvalidInput as exc:
            return _form(pages, settings, linked, token, topics, status=422, error=str(exc))
        return _form(pages, settings, linked, token, topics, saved=True)
