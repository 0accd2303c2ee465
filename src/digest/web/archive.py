"""The archive: past editions newest first, and the web version of each."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, func, select

from digest.errors import NotFound
from digest.models import Edition
from digest.web.deps import PagesDep, SessionDep

router = APIRouter(tags=["archive"], include_in_schema=False)

PAGE_SIZE = 20
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


@router.get("/archive")
def archive(
    session: SessionDep,
    pages: PagesDep,
    page: Annotated[int, Query(ge=1, le=100_000, description="page number, from 1")] = 1,
) -> Response:
    """One page of past editions (test sends are not listed)."""
    published = col(Edition.is_test).is_(False)
    total = int(session.exec(select(func.count()).select_from(Edition).where(published)).one())
    editions = session.exec(
        select(Edition)
        .where(published)
        .order_by(col(Edition.edition_at).desc(), col(Edition.id).desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    last_page = max(1, -(-total // PAGE_SIZE))
    return pages.render(
        "archive",
        editions=editions,
        page=page,
        previous_page=page - 1 if page > 1 else None,
        next_page=page + 1 if page < last_page else None,
    )


@router.get("/archive/{edition_id}")
def edition_page(
    session: SessionDep, edition_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    """The web version of one edition, as the composer rendered it."""
    edition = session.get(Edition, edition_id)
    if edition is None or edition.is_test or not edition.web_html:
        raise NotFound("there is no edition with that number in the archive")
    return HTMLResponse(edition.web_html)
