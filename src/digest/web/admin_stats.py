"""The admin API's per-mail reports: ``GET /api/stats/editions`` (the latest mails, their
totals, readers per day) and ``GET /api/stats/{editions,announcements,alerts}/{id}``.

Mounted like ``web/admin.py`` (same bearer token, same JSON errors; ``/api/stats`` itself
keeps its keys): an unknown mail or newsletter is a 404 saying which. The figures and what
each means are ``engagement_report``'s, as ``digest stats --json`` prints them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from digest import engagement
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.web.admin import admin_router
from digest.web.deps import DatabaseDep, SettingsDep

router = admin_router("stats")
MailId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class TopLinkOut(BaseModel):
    """A link of the mail, most clicked by readers first; the post when it leads to one."""

    url: str
    human_clicks: int
    machine_clicks: int
    post_id: int | None = None
    title: str | None = None


class MailStats(BaseModel):
    """What one mail did."""

    kind: str = Field(description="edition, announcement or alert")
    id: int
    mail: str = Field(description="the mail as its tracked links name it: e12, a3, l7")
    newsletter: str
    subject: str
    sent_at: datetime = Field(
        description="an edition's slot, when an announcement was queued or an alert raised"
    )
    sent: int = Field(description="copies accepted by the receiving server and not bounced since")
    deferred: int
    waiting: int = Field(description="queued or being sent")
    bounced: int
    bounced_hard: int = Field(description="bounces saying the address does not exist")
    bounced_soft: int
    failed: int
    complaints: int = Field(description="copies their reader reported as spam")
    unsubscribes: int = Field(
        description="readers who left the newsletter after this mail, before the next reached them"
    )
    human_clicks: int
    machine_clicks: int = Field(description="link scanners' requests, counted apart")
    unique_clicks: int = Field(description="copies with at least one reader's click")
    click_rate: float | None = Field(description="unique_clicks / sent")
    opens: int
    proxy_opens: int
    top_links: list[TopLinkOut]


class DayStats(BaseModel):
    """One newsletter's readers on one day (UTC)."""

    newsletter: str
    day: date
    joined: int
    unsubscribes: int
    bounces: int
    complaints: int


class StatsOverview(BaseModel):
    """The latest mails newest first, the contract's figures summed over them, and the days."""

    editions: list[MailStats]
    totals: dict[str, Any]
    days: list[DayStats]


def _overview(db: Database, settings: Settings, slug: str, limit: int, span: int) -> dict[str, Any]:
    now = utcnow()
    engagement.fold_pending_clicks(db, settings, now)
    with db.transaction() as session:
        found = engagement.overview(
            session, newsletter=slug or None, today=now.date(), limit=limit, span=span
        )
        return found.as_dict()


def _one(db: Database, settings: Settings, kind: str, mail_id: int) -> dict[str, Any]:
    engagement.fold_pending_clicks(db, settings, utcnow())
    with db.transaction() as session:
        return engagement.mail_report(session, kind, mail_id).as_dict()


@router.get("/stats/editions", response_model=StatsOverview, summary="What the latest mails did")
async def mails(
    db: DatabaseDep,
    settings: SettingsDep,
    newsletter: Annotated[str, Query(max_length=64, description="a newsletter's slug")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    days: Annotated[int, Query(ge=1, le=366)] = 14,
) -> Any:
    """The latest editions, announcements and alerts (each with its ``kind``), their totals,
    and each newsletter's readers who joined and left per day."""
    return await run_in_threadpool(_overview, db, settings, newsletter, limit, days)


@router.get("/stats/editions/{mail_id}", response_model=MailStats, summary="What an edition did")
async def edition(db: DatabaseDep, settings: SettingsDep, mail_id: MailId) -> Any:
    """One edition's figures."""
    return await run_in_threadpool(_one, db, settings, "edition", mail_id)


@router.get(
    "/stats/announcements/{mail_id}", response_model=MailStats, summary="What an announcement did"
)
async def announcement(db: DatabaseDep, settings: SettingsDep, mail_id: MailId) -> Any:
    """One sent announcement's figures."""
    return await run_in_threadpool(_one, db, settings, "announcement", mail_id)


@router.get("/stats/alerts/{mail_id}", response_model=MailStats, summary="What an alert did")
async def alert(db: DatabaseDep, settings: SettingsDep, mail_id: MailId) -> Any:
    """One alert's figures."""
    return await run_in_threadpool(_one, db, settings, "alert", mail_id)
