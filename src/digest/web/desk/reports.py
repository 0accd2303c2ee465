"""``/desk/reports``: what the latest mails did (sent, bounces, complaints, unsubscribes after
them, clicks) and each newsletter's readers per day: joined, unsubscribed, bounced,
complained. The figures are ``engagement``'s, as ``digest stats`` shows them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from digest import engagement, newsletters
from digest.clock import utcnow
from digest.engagement_report import totals
from digest.web.desk.guard import Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)
#: The spans of days the page offers.
SPANS = (7, 14, 30)
#: How many of the latest mails it lists.
MAILS = 20


@router.get("/reports")
def reports(
    request: Request,
    desk: Viewer,
    newsletter: Annotated[str, Query(max_length=64)] = "",
    days: Annotated[int, Query(ge=1, le=366)] = 14,
) -> Response:
    """The latest mails' reports and the readers per newsletter and day."""
    session = desk.session
    found = engagement.overview(
        session, newsletter=newsletter or None, today=utcnow().date(), limit=MAILS, span=days
    )
    return desk_page(
        request,
        "reports",
        desk,
        title="Reports",
        newsletters=list(newsletters.listed(session, archived=True)),
        newsletter=found.newsletter,
        spans=SPANS,
        days=days,
        mails=found.mails,
        totals=totals(found.mails),
        day_rows=found.days,
    )
