"""The archive: past editions newest first, and the web version of each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from digest import newsletters
from digest.archive import archive_page, web_version
from digest.errors import NewsletterNotFound
from digest.web.deps import PagesDep, SessionDep

router = APIRouter(tags=["archive"], include_in_schema=False)

MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


@router.get("/archive")
def archive(
    session: SessionDep,
    pages: PagesDep,
    page: Annotated[int, Query(ge=1, le=100_000, description="page number, from 1")] = 1,
    newsletter: Annotated[str | None, Query(max_length=64, description="one newsletter's")] = None,
) -> Response:
    """One page of past editions (test sends are not listed), of one newsletter or all."""
    chosen = newsletters.get(session, newsletter) if newsletter else None
    if chosen is not None and not chosen.public:
        raise NewsletterNotFound(f"no newsletter {newsletter!r}")
    found = archive_page(session, page, newsletter_id=chosen.id if chosen else None)
    return pages.render(
        "archive",
        newsletter=chosen,
        editions=found.editions,
        page=found.page,
        previous_page=found.previous_page,
        next_page=found.next_page,
    )


@router.get("/archive/{edition_id}")
def edition_page(
    session: SessionDep, edition_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    """The web version of one edition, as the composer rendered it."""
    return HTMLResponse(web_version(session, edition_id))
