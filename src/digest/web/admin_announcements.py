"""The admin API's announcements: write one, schedule it, send it, cancel it, test it.

Mounted like ``web/admin.py`` (same bearer token, same JSON errors): an unknown id is a 404,
a missing subject, an empty body, a time in the past or an audience of nobody a 422, an
archived newsletter or a cancelled announcement a 409.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session

from digest import announcement_copies, announcements, audit
from digest.announcement_rules import audience, parse_addresses
from digest.audit_states import draft_fields, schedule_state
from digest.clock import utcnow
from digest.states import Cadence
from digest.web.admin import admin_router
from digest.web.audited import ApiActorDep
from digest.web.deps import DatabaseDep, SessionDep, SettingsDep

#: An announcement's id in a path: a 32-bit id, so a huge number is a 422, not a 500.
AnnouncementId = Annotated[int, Path(ge=1, le=2**31 - 1)]

router = admin_router("announcements")


class AnnouncementIn(BaseModel):
    """A new announcement: its newsletter, subject and Markdown body, and whom it is for."""

    model_config = ConfigDict(extra="forbid")

    newsletter: str | None = Field(None, description="its slug; may be left out with only one")
    subject: str | None = Field(None, max_length=998)
    body: str = Field("", description="the body, in Markdown", max_length=1_000_000)
    template: str | None = Field(None, description="a template set to render instead")
    topics: list[str] = Field(default_factory=list, description="readers of these (or of all)")
    cadence: Cadence | None = None
    joined_after: date | None = None
    joined_before: date | None = None
    addresses: list[str] = Field(default_factory=list, description="only these addresses")
    dry_run: bool = Field(False, description="answer with the audience; write nothing")


class ScheduleIn(BaseModel):
    """When: ``at`` a moment for everyone, or ``local_hour`` on the day ``on`` in each
    reader's own timezone."""

    model_config = ConfigDict(extra="forbid")

    at: datetime | None = None
    local_hour: int | None = Field(None, ge=0, le=23)
    on: date | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ScheduleIn:
        if (self.at is None) == (self.local_hour is None) or (self.local_hour is None) != (
            self.on is None
        ):
            raise ValueError("give either at, or local_hour with on")
        return self


class TestIn(BaseModel):
    """Where a test copy goes."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(max_length=320)


class AnnouncementOut(BaseModel):
    """An announcement, with its mail by delivery status."""

    id: int
    newsletter: str
    subject: str
    status: str
    send_at: datetime | None
    local_hour: int | None
    local_date: str | None
    recipients: int
    deliveries: dict[str, int] = Field(description="its outbox rows by status")
    template: str | None
    topics: list[str]
    cadence: str | None
    joined_after: datetime | None
    joined_before: datetime | None
    addresses: int = Field(description="how many addresses narrow its audience")
    created_at: datetime
    queued_at: datetime | None
    cancelled_at: datetime | None
    body_markdown: str


class ReachOut(BaseModel):
    """Who it would reach now: how many, the first addresses, readers by timezone."""

    count: int
    sample: list[str]
    zones: dict[str, int]


class Outcome(BaseModel):
    """What an action did, and the announcement after it."""

    announcement: AnnouncementOut
    queued: int = Field(0, description="deliveries queued by this request")
    cancelled: int = Field(0, description="deliveries cancelled by this request")
    sent: int = Field(0, description="deliveries that had gone out already")
    late_zones: list[str] = Field(
        default_factory=list, description="zones whose local hour has passed: sent at once"
    )


def _out(session: Session, announcement_id: int) -> AnnouncementOut:
    row = announcements.get(session, announcement_id)
    return AnnouncementOut.model_validate(announcements.summary(session, row))


@router.post("/announcements", status_code=201, summary="Write an announcement")
def create_announcement(
    body: AnnouncementIn, session: SessionDep, settings: SettingsDep, actor: ApiActorDep
) -> AnnouncementOut | ReachOut:
    """A draft announcement (201); with ``dry_run`` its audience, nothing written."""
    wanted = audience(
        0,
        topics=body.topics,
        cadence=body.cadence.value if body.cadence else None,
        joined_after=body.joined_after,
        joined_before=body.joined_before,
        addresses=parse_addresses(body.addresses) if body.addresses else (),
    )
    draft = announcements.Draft(body.subject, body.body, body.template, wanted)
    if body.dry_run:
        _row, found = announcements.plan(session, body.newsletter, draft, settings)
        return ReachOut(count=found.count, sample=found.sample, zones=found.zones)
    made = announcements.create(session, body.newsletter, draft, settings)
    fields = draft_fields(session, made)
    audit.record(session, actor, "announcement.create", f"announcement {made.id}", after=fields)
    return _out(session, int(made.id or 0))


@router.get("/announcements", summary="List announcements")
def list_announcements(session: SessionDep) -> list[AnnouncementOut]:
    """Every announcement, newest first."""
    return [
        AnnouncementOut.model_validate(announcements.summary(session, r))
        for r in announcements.listed(session)
    ]


@router.get("/announcements/{announcement_id}", summary="One announcement")
def get_announcement(announcement_id: AnnouncementId, session: SessionDep) -> AnnouncementOut:
    """The announcement, with its deliveries by status."""
    return _out(session, announcement_id)


@router.post("/announcements/{announcement_id}/schedule", summary="Schedule an announcement")
def schedule_announcement(
    announcement_id: AnnouncementId, body: ScheduleIn, session: SessionDep, actor: ApiActorDep
) -> Outcome:
    """Send at a moment, or at a local hour of each reader's day; 422 when it has passed."""
    now = utcnow()
    before = schedule_state(announcements.get(session, announcement_id))
    if body.at is not None:
        done = announcements.schedule_at(session, announcement_id, _utc(body.at), now)
    else:
        hour, day = int(body.local_hour or 0), body.on or date.min
        done = announcements.schedule_local(session, announcement_id, hour, day, now)
    after = schedule_state(announcements.get(session, announcement_id))
    target = f"announcement {announcement_id}"
    audit.record(session, actor, "announcement.schedule", target, before=before, after=after)
    return Outcome(announcement=_out(session, announcement_id), late_zones=done.late_zones)


@router.post("/announcements/{announcement_id}/send", summary="Send an announcement now")
def send_announcement(
    announcement_id: AnnouncementId, session: SessionDep, settings: SettingsDep, actor: ApiActorDep
) -> Outcome:
    """Queue it for every reader now (the delivery worker sends it); again, it adds nothing."""
    done = announcements.send(session, settings, announcement_id, utcnow())
    counts = {"queued": done.added, "recipients": done.recipients}
    target = f"announcement {announcement_id}"
    audit.record(session, actor, "announcement.send", target, after=counts)
    return Outcome(announcement=_out(session, announcement_id), queued=done.added)


@router.post("/announcements/{announcement_id}/cancel", summary="Cancel an announcement")
def cancel_announcement(
    announcement_id: AnnouncementId, session: SessionDep, actor: ApiActorDep
) -> Outcome:
    """What is still queued is not sent; 409 when all of it has gone out already."""
    done = announcements.cancel(session, announcement_id, utcnow())
    counts = {"cancelled": done.cancelled, "sent": done.sent}
    target = f"announcement {announcement_id}"
    audit.record(session, actor, "announcement.cancel", target, after=counts)
    return Outcome(
        announcement=_out(session, announcement_id), cancelled=done.cancelled, sent=done.sent
    )


@router.post("/announcements/{announcement_id}/test", summary="Send a test copy")
def test_announcement(
    announcement_id: AnnouncementId,
    body: TestIn,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: ApiActorDep,
) -> dict[str, str]:
    """One copy, marked as a test, to ``address`` now."""
    sent = announcement_copies.send_test(
        db, settings, announcement_id, address=body.address, now=utcnow()
    )
    audit.record_after(db, actor, "announcement.test", f"announcement {announcement_id}")
    return {"address": sent.address, "reply": sent.reply}


def _utc(moment: datetime) -> datetime:
    """A moment without an offset is read as UTC, as on the command line."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
