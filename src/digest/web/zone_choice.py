"""The timezone choice on the page a reader sees once confirmed, and the form that changes it.

The page says which zone digest uses for them (the one their browser gave at signup, or the
server's default) and when their first digest comes there; ``POST
/preferences/{token}/timezone`` changes the zone as the preference centre does
(``subscribers.update_preferences``), behind the same signed preferences token. Like the
preference form it is safe from cross-site posts because nothing but that token, which only the
reader's mail and pages carry, authorises it: no cookie a forged post could ride on. It takes a
form body only, never JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from digest import newsletters, subscribers, subscriptions
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput
from digest.links import PREFERENCES_PATH, preferences_url
from digest.links_auth import Linked
from digest.newsletter_config import configure
from digest.periods import first_due
from digest.states import SubscriberStatus
from digest.web.deps import DatabaseDep, PagesDep, SettingsDep
from digest.web.forms import Fields, first
from digest.web.pages import Pages
from digest.web.preferences import save_with_link
from digest.zones import ZoneGroup, is_listed, zone_groups

router = APIRouter(tags=["preferences"], include_in_schema=False)

ZONE_PATH = PREFERENCES_PATH + "/timezone"


@dataclass(frozen=True)
class ZoneChoice:
    """What the confirmed page shows of the reader's zone, and where its form posts."""

    zone: str
    groups: tuple[ZoneGroup, ...]
    listed: bool  # else the page adds the reader's own zone to the list
    action: str
    first_digest: str | None  # in the reader's words and zone; None once they have had one


def zone_choice(session: Session, settings: Settings, linked: Linked, now: datetime) -> ZoneChoice:
    """The zone part of the confirmed page for this reader, seen at ``now``: when the first
    digest of the newsletters they are on comes (the soonest)."""
    reader = linked.subscriber
    token = preferences_url(settings, linked.id, reader.email).rpartition("/")[2]
    when = None
    active = [
        s
        for s in subscribers.subscriptions_of(session, linked.id)
        if s.status == SubscriberStatus.ACTIVE.value
    ]
    if active and all(s.last_digest_at is None for s in active):
        days = {
            int(n.id or 0): configure(n, settings).weekly_day
            for n in newsletters.listed(session, archived=True)
        }
        at = min(
            first_due(
                s.cadence,
                reader.timezone,
                reader.send_hour,
                now,
                joined=s.active_since,
                weekly_day=days.get(s.newsletter_id, settings.weekly_day),
            )
            for s in active
        )
        when = local_words(at, reader.timezone, now)
    return ZoneChoice(
        zone=reader.timezone,
        groups=zone_groups(),
        listed=is_listed(reader.timezone),
        action=ZONE_PATH.format(token=token),
        first_digest=when,
    )


def local_words(at: datetime, zone_name: str, now: datetime) -> str:
    """``at`` as a reader in ``zone_name`` says it: "Wednesday 2 December at 07:00"."""
    local = at.astimezone(ZoneInfo(zone_name))
    if at <= now:
        return "in the next few minutes"
    year = f" {local.year}" if local.year != now.astimezone(local.tzinfo).year else ""
    return f"on {local:%A} {local.day} {local:%B}{year} at {local:%H:%M}"


def confirmed_page(
    pages: Pages,
    settings: Settings,
    session: Session,
    linked: Linked,
    *,
    status: int = 200,
    saved: bool = False,
    error: str | None = None,
) -> Response:
    """The "You're subscribed" page with the reader's zone and its form."""
    reader = linked.subscriber
    return pages.render(
        "confirmed",
        status=status,
        preferences_url=preferences_url(settings, linked.id, reader.email),
        choice=zone_choice(session, settings, linked, utcnow()),
        saved=saved,
        error=error,
    )


@router.post(ZONE_PATH)
async def save_zone(
    token: str, request: Request, db: DatabaseDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """Save the zone chosen on the confirmed page; a bad one shows the page with why (422)."""

    def save(session: Session, linked: Linked, fields: Fields) -> Response:
        try:
            subscriptions.update_person(
                session, linked.subscriber, timezone=first(fields, "timezone")
            )
        except InvalidInput as exc:
            return confirmed_page(pages, settings, session, linked, status=422, error=str(exc))
        return confirmed_page(pages, settings, session, linked, saved=True)

    return await save_with_link(request, db, settings, pages, token, save)
