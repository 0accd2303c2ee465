"""The app's static files: ``/assets/timezone.js`` fills the subscribe form's timezone;
``/assets/desk.css`` is the desk's stylesheet.

Served from the package rather than a CDN, so the pages' Content-Security-Policy allows
scripts from this origin only (``script-src 'self'``) and never inline ones.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(tags=["assets"], include_in_schema=False)

TIMEZONE_SCRIPT = "/assets/timezone.js"
#: A day: the script rarely changes, and a stale copy only fills the same field the same way.
CACHE = "public, max-age=86400"


DESK_STYLESHEET = "/assets/desk.css"


@functools.cache
def _static(name: str) -> bytes:
    return resources.files("digest.web").joinpath("static", name).read_bytes()


@router.get(TIMEZONE_SCRIPT)
async def timezone_script() -> Response:
    """The script that puts the browser's timezone into the subscribe form."""
    return Response(
        _static("timezone.js"),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": CACHE},
    )


@router.get(DESK_STYLESHEET)
async def desk_stylesheet() -> Response:
    """The desk's stylesheet (its pages allow no inline style)."""
    return Response(
        _static("desk.css"), media_type="text/css; charset=utf-8", headers={"Cache-Control": CACHE}
    )
