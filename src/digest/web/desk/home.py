"""``/desk/``: the page an editor lands on after signing in ("Today")."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from digest.web.desk.guard import Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)


@router.get("/")
def today(request: Request, desk: Viewer) -> Response:
    """Today: the list, the next editions, the outbox and the feeds at a glance."""
    return desk_page(request, "today", desk, title="Today")
