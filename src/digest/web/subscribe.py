"""The subscribe page (``GET /``) and ``POST /subscribe``: the same answer for every address.

Whether the address is new, pending, active or unsubscribed, the status and body of the answer
are identical, so the form cannot be used to learn who subscribes. A honeypot hit or a blocked
domain gets that same answer too, and nothing is stored or sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from digest import newsletters
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import InvalidInput, RateLimited
from digest.models import Newsletter
from digest.newsletter_config import configure
from digest.posts.topics import known_topics
from digest.signup import record_subscription
from digest.subscriber_fields import Consent
from digest.web.deps import LimiterDep, PagesDep, SettingsDep
from digest.web.forms import read_fields
from digest.web.pages import wants_json
from digest.web.ratelimit import client_ip, client_key, forwarded_for
from digest.web.signup import HONEYPOT, Refused, check_request
from digest.web.writer import BatchWriter

router = APIRouter(tags=["subscribe"])

CHECK_INBOX = (
    "Thanks! If this address can receive our digest, a confirmation email is on its way. "
    "Open it and press the button to start your subscription."
)
TOPICS_TTL_SECONDS = 60.0
T = TypeVar("T")


def _cached(request: Request, name: str, load: Callable[[Session], list[T]]) -> list[T]:
    """``load``'s answer, kept on the app for a minute under ``name``: the page is served far
    more often than posts or newsletters change."""
    state = request.app.state
    cached = getattr(state, name, None)
    now = time.monotonic()
    if cached is not None and now - cached[0] < TOPICS_TTL_SECONDS:
        return list(cached[1])
    with state.db.transaction() as session:
        found = load(session)
        session.expunge_all()  # plain values for other requests' threads
    setattr(state, name, (now, found))
    return list(found)


def cached_topics(request: Request) -> list[str]:
    """``known_topics``, kept for a minute."""
    featuring = request.app.state.settings.featured_categories
    return _cached(request, "topics_cache", lambda s: known_topics(s, featuring=featuring))


def cached_newsletters(request: Request) -> list[Newsletter]:
    """The newsletters the public page offers, kept for a minute."""
    return _cached(request, "newsletters_cache", newsletters.offered)


def _offered_slugs(offered: list[Newsletter]) -> dict[str, int]:
    """Every slug (former ones too) of the offered newsletters, to its id."""
    slugs: dict[str, int] = {}
    for n in offered:
        for slug in [*(n.former_slugs or []), n.slug]:
            slugs[slug] = int(n.id or 0)
    return slugs


def alert_offer(offered: list[Newsletter], settings: Settings) -> dict[str, object] | None:
    """What the page says of breaking-news alerts: the checkbox's label and, when only some of
    the newsletters offer alerts, their names; None when none does (no checkbox)."""
    configs = [c for c in (configure(n, settings) for n in offered) if c.alerts]
    if not configs:
        return None
    most = max(c.alert_budget for c in configs)
    night = all(not c.quiet_hours.off for c in configs)
    label = f"Breaking-news alerts (at most {most} a day{', never at night' if night else ''})"
    names = [c.name for c in configs] if len(configs) < len(offered) else []
    return {"label": label, "from": names}


@router.get("/", include_in_schema=False)
@router.get("/subscribe", include_in_schema=False)
def subscribe_page(request: Request, pages: PagesDep, settings: SettingsDep) -> Response:
    """The "Stay in touch" form."""
    offered = cached_newsletters(request)
    return pages.render(
        "subscribe",
        topics=cached_topics(request),
        newsletters=offered,
        alerts=alert_offer(offered, settings),
        honeypot=HONEYPOT,
        typed={},
        errors={},
    )


@router.post(
    "/subscribe",
    status_code=202,
    summary="Ask to subscribe; a confirmation mail goes out for a new or unconfirmed address",
    responses={413: {}, 415: {}, 422: {}, 429: {}},
)
async def subscribe(
    request: Request,
    settings: SettingsDep,
    pages: PagesDep,
    limiter: LimiterDep,
) -> Response:
    """Record a subscription request and answer the same whatever the address's state."""
    peer = request.client.host if request.client else None
    ip = client_ip(peer, forwarded_for(request.headers), settings.trusted_proxies)
    retry_after = await limiter.check(client_key(ip))
    if retry_after is not None:
        raise RateLimited(
            "too many subscribe requests from your address; try again later", retry_after
        )
    fields = await read_fields(request)
    offered = cached_newsletters(request)
    if not offered:
        raise InvalidInput("newsletters: there is no newsletter to subscribe to here")
    form = check_request(fields, _offered_slugs(offered))
    if isinstance(form, Refused):
        if wants_json(request):
            raise form.first()
        # The form again, as typed, each reason beside its field: nothing here depends on
        # whether the address is known, so this answer tells no more than the other.
        return pages.render(
            "subscribe",
            status=422,
            topics=cached_topics(request),
            newsletters=offered,
            alerts=alert_offer(offered, settings),
            honeypot=HONEYPOT,
            typed=form.typed,
            errors=form.messages(),
        )
    if not form.is_bot:
        consent = Consent(
            at=utcnow(),
            ip=ip,
            user_agent=request.headers.get("user-agent"),
            source=form.source or ("api" if wants_json(request) else "form"),
            wording=settings.consent_wording,
        )
        asked = form.newsletters or (int(offered[0].id or 0),)
        # The mail names what they asked for where the site offers a choice.
        names = [n.name for n in offered if n.id in asked] if len(offered) > 1 else []
        writer: BatchWriter = request.app.state.writer
        renderer = request.app.state.renderer
        domain = request.app.state.sender_domain
        await writer.run(
            lambda session: record_subscription(
                session,
                settings,
                renderer,
                form.email,
                consent=consent,
                domain=domain,
                name=form.name,
                cadence=form.cadence,
                topics=form.topics,
                newsletter_ids=asked,
                timezone=form.timezone,
                newsletter_names=names,
                alerts=form.alerts,
            )
        )
    if wants_json(request):
        return JSONResponse({"status": "pending", "message": CHECK_INBOX}, status_code=202)
    return pages.render("check_inbox", message=CHECK_INBOX)
