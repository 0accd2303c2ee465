"""The dependencies routes declare: settings, store, a session in one transaction, pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from digest.config import Settings
from digest.db import Database
from digest.web.pages import Pages
from digest.web.ratelimit import Limiter

# The lookups below are async only so FastAPI calls them on the event loop: a plain ``def``
# dependency is run in the thread pool, a thread hop per dependency per request for reading
# an attribute.


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_db(request: Request) -> Database:
    """The store the app was created with."""
    return request.app.state.db  # type: ignore[no-any-return]


async def get_pages(request: Request) -> Pages:
    """The page renderer."""
    return request.app.state.pages  # type: ignore[no-any-return]


async def get_limiter(request: Request) -> Limiter:
    """The per-IP limiter of subscribe requests."""
    return request.app.state.ip_limiter  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    """A session in one transaction, committed when the route returns, rolled back on error."""
    db: Database = request.app.state.db
    with db.transaction() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
PagesDep = Annotated[Pages, Depends(get_pages)]
LimiterDep = Annotated[Limiter, Depends(get_limiter)]
# scope="function": commit before the response is sent, so a client that sees success can
# rely on it (the default runs the exit code after the response).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
