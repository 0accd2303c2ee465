"""The admin API's breaking-news alerts: ``POST /api/posts/{id}/alert`` queues one.

Mounted like ``web/admin.py`` (same bearer token, same JSON errors): an unknown post or
newsletter is a 404; a post alerted in that newsletter before, an archived newsletter, one
that offers no alerts, or one whose readers have not opted in is a 409 saying which.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from digest import audit
from digest.alerts import raise_alert
from digest.audit_states import alert_fields
from digest.web.admin import admin_router
from digest.web.audited import ApiActorDep
from digest.web.deps import DatabaseDep, SettingsDep

router = admin_router("alerts")
_MAX_ID = 2**31 - 1  # the id columns are 32-bit on PostgreSQL


class AlertRequest(BaseModel):
    """Which newsletter the alert goes out in; left out: the only one."""

    model_config = ConfigDict(extra="forbid")

    newsletter: str | None = Field(None, max_length=64, description="the newsletter's slug")


class AlertResult(BaseModel):
    """The alert raised, and how many opted-in readers it was queued for or held back from."""

    alert_id: int
    post_id: int
    newsletter: str
    source: str
    raised_at: datetime
    expires_at: datetime = Field(description="not sent after this; held stories go to digests")
    queued: int
    held_budget: int = Field(description="readers whose alerts for that local day are used up")
    held_quiet: int = Field(description="readers in quiet hours until after it expires")


@router.post(
    "/posts/{post_id}/alert",
    status_code=201,
    response_model=AlertResult,
    summary="Send a post as a breaking-news alert",
)
async def alert_post(
    post_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    db: DatabaseDep,
    settings: SettingsDep,
    actor: ApiActorDep,
    body: AlertRequest | None = None,
) -> AlertResult:
    """Queue the post as an alert to the newsletter's readers who opted in, at once; a worker
    sends it. An alert goes once per newsletter: asking again is a 409."""
    slug = body.newsletter if body is not None else None
    report = await run_in_threadpool(
        lambda: raise_alert(db, settings, post_id, newsletter=slug, source="api")
    )
    target, fields = f"post {report.post_id}", alert_fields(report)
    await run_in_threadpool(audit.record_after, db, actor, "post.alert", target, after=fields)
    return AlertResult.model_validate(report.as_dict())
