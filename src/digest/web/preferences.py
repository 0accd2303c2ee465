"""The preference centre behind a signed link: every newsletter the reader is on (and the
public ones they could join), each with its cadence, topics and alerts; their zone, hour and
name once.

A change applies from the next edition: deliveries already queued keep what they were made
with. What is shown and how a form is checked and written is ``digest.preference_centre``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlmodel import Session

from digest import preference_centre
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.links import unsubscribe_url
from digest.links_auth import Linked, linked_subscriber
from digest.preference_centre import Entry
from digest.subscriber_fields import Consent
from digest.tokens import Purpose
from digest.web.deps import DatabaseDep, PagesDep, SessionDep, SettingsDep
from digest.web.forms import Fields, read_fields
from digest.web.pages import Pages
from digest.web.ratelimit import client_ip, forwarded_for

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


@dataclass(frozen=True)
class Row:
    """One newsletter as the form shows it: stored values, or what was typed into a refused form."""

    entry: Entry
    subscribed: bool
    cadence: str
    topics: list[str]
    alerts: bool = False


def _rows(shown: Sequence[Entry], typed: Fields | None) -> list[Row]:
    rows = []
    for e in shown:
        if typed is None:
            rows.append(Row(e, e.on, e.cadence, e.topics, e.alerts))
            continue
        ticked = {p for v in typed.get("subscribed", []) for p in v.split(",")}
        rows.append(
            Row(
                e,
                str(e.id) in ticked,
                (typed.get(f"cadence-{e.id}") or [e.cadence])[0],
                list(typed.get(f"topics-{e.id}", [])),
                bool(typed.get(f"alerts-{e.id}")),
            )
        )
    return rows


def _form(
    pages: Pages,
    settings: Settings,
    linked: Linked,
    token: str,
    shown: Sequence[Entry],
    *,
    status: int = 200,
    typed: Fields | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    person = linked.subscriber

    def typed_one(key: str, stored: object) -> str:
        got = (typed or {}).get(key)
        return got[0] if got else str(stored)

    return pages.render(
        "preferences",
        status=status,
        action=f"/preferences/{token}",
        email=person.email,
        person_name=typed_one("name", person.name),
        timezone=typed_one("timezone", person.timezone),
        timezone_other=typed_one("timezone_other", ""),
        send_hour=typed_one("send_hour", person.send_hour),
        tracking=settings.tracking.value,
        tracking_opt_out=bool(typed.get(preference_centre.OPT_OUT))
        if typed is not None
        else bool(person.tracking_opt_out),
        rows=_rows(shown, typed),
        zones=COMMON_ZONES,
        hours=range(24),
        errors=errors or {},
        saved=saved,
        unsubscribe_action=unsubscribe_url(settings, linked.id, person.email, None).removeprefix(
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
    shown = preference_centre.entries(session, settings, linked.subscriber)
    return _form(pages, settings, linked, token, shown)


#: What a form behind a preferences link does, given the reader its token names.
Save = Callable[[Session, Linked, Fields], Response]


async def save_with_link(
    request: Request, db: Database, settings: Settings, pages: Pages, token: str, save: Save
) -> Response:
    """Read a form posted behind a preferences link and ``save`` it for the reader the token
    names, in one transaction; an erased reader's link answers 404.

    The token in the path is all that authorises it (no cookie a forged cross-site post could
    ride on), and only form bodies are read: a page elsewhere cannot post JSON here.
    """
    fields = await read_fields(request, allow_json=False)
    return await run_in_threadpool(_with_reader, db, settings, pages, token, fields, save)


def _with_reader(
    db: Database, settings: Settings, pages: Pages, token: str, fields: Fields, save: Save
) -> Response:
    with db.transaction() as session:
        linked = linked_subscriber(session, settings, token, Purpose.PREFERENCES)
        if linked is None:
            return pages.render("gone", status=404)
        return save(session, linked, fields)


@router.post("/preferences/{token}")
async def save_preferences(
    token: str, request: Request, db: DatabaseDep, settings: SettingsDep, pages: PagesDep
) -> Response:
    """Save the form; a bad value shows the form again with the reasons (422), nothing saved."""
    peer = request.client.host if request.client else None
    consent = Consent(
        at=utcnow(),
        ip=client_ip(peer, forwarded_for(request.headers), settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
        source="preferences",
        wording=settings.consent_wording,
    )

    def save(session: Session, linked: Linked, fields: Fields) -> Response:
        person = linked.subscriber
        shown = preference_centre.entries(session, settings, person)
        checked = preference_centre.plan(shown, person, fields)
        if not isinstance(checked, preference_centre.Plan):
            return _form(
                pages, settings, linked, token, shown, status=422, typed=fields, errors=checked
            )
        preference_centre.apply(
            session,
            person,
            shown,
            checked,
            consent=consent,
            default_timezone=settings.timezone,
            default_send_hour=settings.send_hour,
        )
        shown = preference_centre.entries(session, settings, person)
        return _form(pages, settings, linked, token, shown, saved=True)

    return await save_with_link(request, db, settings, pages, token, save)
