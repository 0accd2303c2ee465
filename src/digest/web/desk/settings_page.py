"""``/desk/settings``: every setting with its effective value (secrets redacted), its default
and its help, as ``digest settings`` prints them; and for owners, the deliverability
self-check of ``digest check`` on a button.

The check looks DNS up, connects to the site and the SMTP relay: it runs only when an owner
asks (a POST, never a GET), in a worker thread, with the check's own timeouts, after the
request's transaction is closed so the store is not held while it waits on the network.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

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


def _page(request: Request, desk: Desk, report: Report | None) -> Response:
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
    report = await run_in_threadpool(run_checks, desk.settings, lambda: db, resolver=resolver)
    return _page(request, desk, report)
