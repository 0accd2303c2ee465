"""The admin API under ``/api/``: subscribers, stats, and making an edition now.

Off (every path answers 404) while ``DIGEST_ADMIN_TOKEN`` is unset; with it set, each request
needs ``Authorization: Bearer <token>`` (401 otherwise). Answers are JSON, errors included
(``web/errors.py`` answers JSON for everything under ``/api/``, whatever the Accept header),
and described in ``/openapi.json`` by the models below.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from digest import audit, editions, subscribers
from digest.addresses import normalize_email
from digest.audit import Actor
from digest.audit_states import bounce_fields
from digest.clock import utcnow
from digest.config import Settings
from digest.db import Database
from digest.delivery.bounces import record_reports
from digest.delivery.dsn import Kind, Report, field_text
from digest.delivery.inbound import read_inbound
from digest.errors import DigestError
from digest.mail.message_id import message_id_in
from digest.states import Cadence, SubscriberStatus
from digest.stats import counts
from digest.subscriber_fields import parse_status
from digest.web.audited import ApiActorDep
from digest.web.bearer import require_bearer
from digest.web.deps import DatabaseDep, SessionDep, SettingsDep
from digest.web.errors import API_PREFIX

_bearer = HTTPBearer(auto_error=False, description="the value of DIGEST_ADMIN_TOKEN")
#: The deepest page an API client may ask for; a bigger offset is a 422, not a database
#: overflow (SQLite and PostgreSQL both stop at 2**63 - 1).
MAX_OFFSET = 1_000_000_000


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through only with the admin token; without a token set, there is no API."""
    if not settings.admin_token:
        raise HTTPException(404, "There is no page at this address.")
    require_bearer(credentials, settings.admin_token, what="admin", setting="DIGEST_ADMIN_TOKEN")


class AdminRoute(APIRoute):
    """A route that checks the admin token before anything reads the request body.

    FastAPI reads and parses a route's body before it runs the route's dependencies, so a
    stranger could make it read a large body or learn from its parse errors; this check runs
    first, on the headers alone.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler behind the token check."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            require_admin(request.app.state.settings, await _bearer(request))
            return await handler(request)

        return checked


def admin_router(tag: str) -> APIRouter:
    """A router under ``/api/`` behind the admin token, as every admin route is."""
    return APIRouter(
        prefix=API_PREFIX,
        tags=[tag],
        route_class=AdminRoute,
        # Checked again as a dependency (headers only, no cost) so that OpenAPI shows the scheme.
        dependencies=[Depends(require_admin)],
        responses={401: {"description": "missing or wrong admin token"}},
    )


router = admin_router("admin")


# -- models ----------------------------------------------------------------------------------


class SubscriberOut(BaseModel):
    """One subscriber as the admin API shows them."""

    id: int
    email: str
    name: str
    status: SubscriberStatus
    cadence: Cadence
    topics: list[str]
    timezone: str
    send_hour: int
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    last_digest_at: datetime | None
    alerts: bool = Field(False, description="opted in to breaking-news alerts")


class SubscriberPage(BaseModel):
    """A page of subscribers in address order, and how many match in all."""

    total: int
    limit: int
    offset: int
    items: list[SubscriberOut]


class Stats(BaseModel):
    """How the list and the outbox stand."""

    subscribers: dict[str, int] = Field(description="subscribers by status")
    deliveries: dict[str, int] = Field(description="outbox rows by state")
    editions: int
    feeds: int
    feeds_failing: int
    alerts: dict[str, int] = Field(
        default_factory=dict,
        description="alerts per reader: sent, held_budget, held_quiet, expired, folded",
    )


class EditionRequest(BaseModel):
    """Make an edition now; the running delivery worker sends it."""

    model_config = ConfigDict(extra="forbid")

    cadence: Cadence = Cadence.DAILY
    due_only: bool = Field(
        False,
        description="only subscribers whose local send hour has come (as the scheduler does); "
        "false: every active subscriber of the cadence without this period's digest",
    )
    dry_run: bool = Field(False, description="count who would get what, write nothing")


class EditionResult(BaseModel):
    """What making the edition did; ``made`` is false when nobody was due."""

    made: bool
    key: str | None = None
    cadence: Cadence
    edition_id: int | None = None
    recipients: int = 0
    skipped: int = 0
    bodies: int = 0
    dry_run: bool = False


class BounceEvent(BaseModel):
    """A bounce or complaint as a mail service's webhook reports it (translate its event)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["hard", "soft", "complaint"] = Field(
        description="hard: the address does not exist; soft: this message failed for good; "
        "complaint: the reader marked it as spam"
    )
    # No length limits here: pydantic would refuse the whole batch for one long field, and a
    # mail service would resend that batch forever. _event_report judges each event alone.
    email: str | None = Field(None, description="the recipient; needed without message_id")
    message_id: str | None = Field(None, description="the Message-ID of the mail, <...@...>")
    detail: str = Field("", description="the service's reason, kept on the delivery")


class BounceEvents(BaseModel):
    """Events to record, at most 1000 at a time."""

    model_config = ConfigDict(extra="forbid")

    events: list[BounceEvent] = Field(min_length=1, max_length=1000)


class BounceResult(BaseModel):
    """What recording the reports did."""

    hard: int
    soft: int
    delayed: int
    complaint: int
    unsubscribe: int
    unmatched: int = Field(description="reports about mail or addresses that are not ours")
    stopped: int = Field(description="subscribers who get no more mail because of them")


def _event_report(event: BounceEvent) -> Report:
    # A missing, malformed or overlong address or Message-ID makes this one event unmatched,
    # not the batch a 422: a mail service would resend the whole batch forever.
    try:
        recipient = normalize_email(event.email) if event.email else None
    except DigestError:
        recipient = None
    message_id = message_id_in(event.message_id) if event.message_id else None
    detail = field_text(event.detail)[:500]
    return Report(Kind(event.type), recipient, message_id, event.type, detail)


def _record(
    db: Database, settings: Settings, reports: list[Report], actor: Actor, *, trusted: bool
) -> BounceResult:
    with db.transaction() as session:
        tally = record_reports(session, reports, settings, trusted=trusted)
        if (changed := bounce_fields(tally)) is not None:
            audit.record(session, actor, "bounce.record", "", after=changed)
        return BounceResult(**tally.as_dict())


def _read_and_record(db: Database, settings: Settings, raw: bytes, actor: Actor) -> BounceResult:
    # Parsing a stranger's mail is CPU work: it runs here, off the event loop, with the write.
    return _record(db, settings, read_inbound(raw), actor, trusted=False)


# -- routes ----------------------------------------------------------------------------------


@router.get("/subscribers", response_model=SubscriberPage, summary="List subscribers")
def list_subscribers(
    session: SessionDep,
    status: Annotated[
        str | None,
        Query(
            description="only this status: pending, active, unsubscribed, bounced or "
            "complained (empty or absent: all)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SubscriberPage:
    """Subscribers in address order, a page at a time, optionally of one status."""
    # InvalidInput (422) names the statuses when the value is not one of them.
    wanted = parse_status(status, "") or None
    by_status = subscribers.count_by_status(session)
    total = by_status[wanted] if wanted is not None else sum(by_status.values())
    rows = subscribers.list_readers(session, status=wanted, limit=limit, offset=offset)
    items = [SubscriberOut.model_validate(row.as_dict()) for row in rows]
    return SubscriberPage(total=total, limit=limit, offset=offset, items=items)


@router.get("/stats", response_model=Stats, summary="Counts of subscribers, outbox and feeds")
def stats(session: SessionDep) -> Stats:
    """Subscribers by status, deliveries by state, editions made, feeds and failing feeds."""
    return Stats.model_validate(counts(session), from_attributes=True)


@router.post("/bounces", response_model=BounceResult, summary="Record bounces and complaints")
async def record_bounces(
    body: BounceEvents, db: DatabaseDep, settings: SettingsDep, actor: ApiActorDep
) -> BounceResult:
    """Record bounce and complaint events, e.g. from a mail service's webhook.

    A hard bounce or a complaint stops the subscriber's mail and suppresses the address; a soft
    bounce marks the delivery only. Recording the same event twice changes nothing more.
    """
    reports = [_event_report(event) for event in body.events]
    return await run_in_threadpool(lambda: _record(db, settings, reports, actor, trusted=True))


@router.post(
    "/bounces/report",
    response_model=BounceResult,
    summary="Record a bounce report (DSN) or complaint (ARF) mail",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def record_bounce_report(
    request: Request, db: DatabaseDep, settings: SettingsDep, actor: ApiActorDep
) -> BounceResult:
    """The whole mail as the body (``Content-Type: message/rfc822``): a delivery status
    notification (RFC 3464), a feedback-loop complaint (RFC 5965), or a mail to the
    List-Unsubscribe mailto. 422 when it is none of these."""
    raw = await request.body()
    return await run_in_threadpool(_read_and_record, db, settings, raw, actor)


@router.post("/editions", response_model=EditionResult, summary="Make an edition now")
async def make_edition(
    body: EditionRequest, db: DatabaseDep, settings: SettingsDep, actor: ApiActorDep
) -> Any:
    """Make the edition of a cadence now; the running worker delivers it.

    At most one digest per subscriber per period still holds: asking twice adds nothing.
    """
    report = await run_in_threadpool(
        lambda: editions.make_edition(
            db,
            settings,
            cadence=body.cadence.value,
            now=utcnow(),
            due_only=body.due_only,
            dry_run=body.dry_run,
        )
    )
    if report is None:
        return EditionResult(made=False, cadence=body.cadence, dry_run=body.dry_run)
    if not body.dry_run:
        made = {"edition": report.edition_id, "recipients": report.recipients}
        entry = ("edition.make", report.key)
        await run_in_threadpool(audit.record_after, db, actor, *entry, after=made)
    return EditionResult(
        made=not body.dry_run,
        key=report.key,
        cadence=body.cadence,
        edition_id=report.edition_id,
        recipients=report.recipients,
        skipped=report.skipped,
        bodies=report.bodies,
        dry_run=body.dry_run,
    )
