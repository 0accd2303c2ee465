"""``/desk/settings``: every setting with its effective value (secrets redacted), its default
and its help, as ``digest settings`` prints them; and for owners, the deliverability
self-check of ``digest check`` on a button.

The check looks DNS up, connects to the site and the SMTP relay: it runs only when an owner
asks (a POST, never a GET), in a worker thread, with the check's own timeouts, after the
request's transaction is closed so the store is not held while it waits on the network.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from digest.clock import utcnow
from digest.db import Database
from digest.deliverability.report import MARKS, Report
from digest.deliverability.run import run_checks
from digest.settings_report import describe
from digest.web.deps import SessionDep
from digest.web.desk.guard import Desk, OwnerPost, Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

#: A check this recent is shown again rather than run again: a reload or a second owner's click
#: does not send another round of DNS lookups and SMTP connections.
REUSE_FOR = timedelta(minutes=1)


@dataclass
class _Checks:
    """The app's last check and the lock that lets one run at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    at: datetime | None = None
    report: Report | None = None


def _checks(request: Request) -> _Checks:
    # Made on first use, on the event loop (no await between the test and the set).
    state = getattr(request.app.state, "desk_checks", None)
    if state is None:
        state = request.app.state.desk_checks = _Checks()
    return state  # type: ignore[no-any-return]


def _page(
    request: Request, desk: Desk, report: Report | None, at: datetime | None = None
) -> Response:
    findings = [
        {
            "mark": MARKS[f.level],
            "level": f.level.value,
            "name": f.name,
            "detail": f.detail,
            "fix": f.fix,
        }
        for f in (report.findings if report is not None else [])
    ]
    return desk_page(
        request,
        "settings",
        desk,
        title="Settings",
        settings_shown=describe(desk.settings),
        findings=findings,
        checked=report is not None,
        passed=report.passed if report is not None else False,
        checked_at=at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "",
    )


@router.get("/settings")
def settings_page(request: Request, desk: Viewer) -> Response:
    """The effective settings, read-only, and (for owners) the button that runs the check."""
    return _page(request, desk, None)


@router.post("/settings/check")
async def run_check(request: Request, desk: OwnerPost, session: SessionDep) -> Response:
    """Run ``digest check`` now and show each line with its fix."""
    # The guard's transaction is done: close it before waiting on DNS and SMTP (on SQLite it
    # holds the write lock) so signups and sends go on meanwhile.
    session.commit()
    db: Database = request.app.state.db
    resolver = getattr(request.app.state, "check_resolver", None)
    checks = _checks(request)
    async with checks.lock:
        if checks.report is None or checks.at is None or utcnow() - checks.at >= REUSE_FOR:
            checks.report = await run_in_threadpool(
                run_checks, desk.settings, lambda: db, resolver=resolver
            )
            checks.at = utcnow()
        return _page(request, desk, checks.report, checks.at)
