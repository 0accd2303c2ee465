"""The web app: ``create_app(settings, db)`` builds it; nothing is built at import time.

Routers live one per concern (subscribe, confirm, unsubscribe, preferences, archive, health,
metrics, the email services' webhooks, the admin API); a new one is a line in
``default_routers()``, or passed to ``create_app(routers=...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from digest.compose.render import DigestRenderer, Renderers
from digest.config import Settings
from digest.db import Database
from digest.delivery.sns import SnsVerifier
from digest.tracking import TrackingMode
from digest.web import errors
from digest.web.click_recorder import ClickRecorder
from digest.web.middleware import Guard
from digest.web.pages import Pages, template_environment
from digest.web.ratelimit import limiter_for
from digest.web.writer import BatchWriter

IP_WINDOW_SECONDS = 3600


def default_routers() -> list[APIRouter]:
    """Every router of the app, in the order they are mounted: public pages, then operators'."""
    from digest.web import (
        admin,
        admin_alerts,
        admin_announcements,
        admin_newsletters,
        admin_stats,  # engagement reports (issue 16)
        archive,
        assets,
        clicks,
        confirm,
        esp_hooks,
        health,
        metrics,
        preferences,
        subscribe,
        unsubscribe,
        zone_choice,
    )
    from digest.web import stay as hygiene_stay
    from digest.web.desk import desk_routers

    return [
        subscribe.router,
        assets.router,  # GET /assets/timezone.js
        confirm.router,
        unsubscribe.router,
        preferences.router,
        zone_choice.router,  # POST /preferences/{token}/timezone, from the confirmed page
        archive.router,
        health.router,
        metrics.router,  # GET /metrics
        esp_hooks.router,  # POST /esp/{service}: 404 unless DIGEST_SMTP_URL's service has one
        admin.router,  # /api/..., off while DIGEST_ADMIN_TOKEN is unset
        admin_newsletters.router,  # /api/newsletters..., the same
        admin_alerts.router,  # POST /api/posts/{id}/alert, the same
        admin_announcements.router,  # /api/announcements..., the same
        # engagement reports (issue 16)
        admin_stats.router,  # GET /api/stats/editions..., the same
        *desk_routers(),  # /desk/...: off (404) with DIGEST_DESK=false
        # List hygiene: GET /stay/{token} shows "Yes, keep sending", POST keeps the reader.
        hygiene_stay.router,
        # Tracked links (issue 16): GET/HEAD /r/{token} and the open pixel /o/{token}.gif.
        clicks.router,
    ]


def create_app(settings: Settings, db: Database, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The FastAPI app over this store; ``routers`` are mounted after the public ones."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.tracking != TrackingMode.OFF:
            app.state.clicks.start()  # folds what an earlier run left waiting
        yield
        app.state.writer.close()  # commit what is queued before the process ends
        app.state.clicks.close()

    app = FastAPI(
        lifespan=lifespan,
        title=f"{settings.site_name} (digest)",
        docs_url=None,  # the interactive docs load scripts from a CDN, which our CSP forbids
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    env = template_environment(settings)
    app.state.settings = settings
    app.state.db = db
    app.state.renderer = DigestRenderer(settings)  # the confirmation mail's templates
    app.state.renderers = Renderers(settings)  # each newsletter's, for its welcome mail
    app.state.pages = Pages(settings, env)
    app.state.ip_limiter = limiter_for(db, settings.ip_limit, IP_WINDOW_SECONDS, name="subscribe")
    app.state.sender_domain = settings.from_domain
    app.state.writer = BatchWriter(db)
    app.state.clicks = ClickRecorder(db, settings)
    app.state.sns_verifier = SnsVerifier()  # caches SNS signing certificates between posts
    errors.install(app)
    for router in [*default_routers(), *routers]:
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["POST"],
            allow_headers=["Content-Type", "Accept"],
            max_age=600,
        )
    app.add_middleware(Guard)
    return app
