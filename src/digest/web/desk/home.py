"""``/desk/``: the page an editor lands on after signing in ("Today"): the list by status and
newsletter, growth and churn, the next editions, the outbox, recent failures, the feeds.

The list's figures come from the counts the store keeps (``list_counts``), the outbox's from
the scheduler's tally of the last minute (``outbox_tally``), the latest failures from a partial
index: the page costs the same at a million readers as at ten thousand. Charts are images at
their own addresses (``charts``); their numbers are on the page as tables too.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from digest import list_counts, outbox_tally, stats
from digest.clock import utcnow
from digest.posts.feeds import list_feeds
from digest.states import SubscriberStatus
from digest.upcoming import next_editions
from digest.web.deps import SessionDep
from digest.web.desk.charts import SPANS, chart_of
from digest.web.desk.guard import Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

#: How many upcoming sends and recent failures the page lists.
NEXT_RUNS = 10
FAILURES = 10


@router.get("")
def bare() -> Response:
    """``/desk`` without its slash (and ``/desk/editions/..`` as a client resolves it): to
    Today, as every desk redirect goes (303), not Starlette's own 307."""
    return RedirectResponse("/desk/", status_code=303)


@router.get("/")
def today(request: Request, desk: Viewer, session: SessionDep) -> Response:
    """Today: the list, the next editions, the outbox and the feeds at a glance."""
    now = utcnow()
    spans = {days: list_counts.daily(session, days, today=now.date()) for days in SPANS}
    charts = [
        {
            "chart": chart_of(kind, days, spans[days]),
            "src": f"/desk/charts/{kind}-{days}.svg",
        }
        for days in SPANS
        for kind in ("growth", "churn")
    ]
    return desk_page(
        request,
        "today",
        desk,
        title="Today",
        statuses=[s.value for s in SubscriberStatus],
        totals=list_counts.counts_by_status(session),
        newsletters=list_counts.by_newsletter(session),
        charts=charts,
        spans=[{"days": days, "series": list(reversed(spans[days]))} for days in SPANS],
        runs=next_editions(session, desk.settings, now, limit=NEXT_RUNS),
        outbox=outbox_tally.current(session, now),
        failures=stats.last_errors(session, FAILURES),
        feeds=list_feeds(session),
    )
