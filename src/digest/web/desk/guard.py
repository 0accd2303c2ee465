"""What every desk request passes through: the desk switched on, a live session, the role
the action needs, and on every POST the session's CSRF token.

Routes declare ``Viewer``, ``Editor`` or ``Owner`` (reading) and ``EditorPost`` and so on
(changing): the dependency answers 404 when the desk is off, sends a browser without a
session to the sign-in page, and answers 403 for a role that does not allow the action or a
form without its CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from digest import desk_sessions
from digest.audit import Actor
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import Forbidden, SignInRequired
from digest.models import DeskSession, DeskUser
from digest.roles import Role
from digest.web.deps import SessionDep, SettingsDep
from digest.web.ratelimit import client_ip, forwarded_for

COOKIE = "digest_desk"
#: A POST form's largest field we read the CSRF token from.
MAX_FORM_FIELDS = 200


@dataclass(frozen=True)
class Desk:
    """The signed-in person of this request: their account, session and role."""

    user: DeskUser
    row: DeskSession
    role: Role
    ip: str
    settings: Settings
    session: Session

    @property
    def csrf(self) -> str:
        """The CSRF token every form of this session carries."""
        return self.row.csrf_token

    @property
    def actor(self) -> Actor:
        """This person as the audit log names them."""
        return Actor("desk", self.user.email, self.ip)

    def may(self, needed: Role) -> bool:
        """Whether this person's role allows what ``needed`` may do (to show or hide a button)."""
        return self.role.allows(needed)


def desk_enabled(settings: SettingsDep) -> None:
    """404 for every desk path while ``DIGEST_DESK`` is false."""
    if not settings.desk:
        raise HTTPException(404, "There is no page at this address.")


def request_ip(request: Request, settings: Settings) -> str:
    """The client's address, as the trusted proxies report it."""
    peer = request.client.host if request.client else None
    return client_ip(peer, forwarded_for(request.headers), settings.trusted_proxies)


def idle_limit(settings: Settings) -> timedelta:
    """How long a session may go without a request."""
    return timedelta(minutes=settings.desk_idle_minutes)


def _signed_in(request: Request, settings: Settings, session: Session) -> Desk:
    found = desk_sessions.lookup(
        session, request.cookies.get(COOKIE), utcnow(), idle=idle_limit(settings)
    )
    if found is None or found[0].pending_totp:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        raise SignInRequired(target if request.method == "GET" else "/desk/")
    row, user = found
    try:
        role = Role(user.role)
    except ValueError:
        role = Role.VIEWER
    return Desk(user, row, role, request_ip(request, settings), settings, session)


def _needs(needed: Role, *, post: bool):  # type: ignore[no-untyped-def]
    async def check(request: Request, settings: SettingsDep, session: SessionDep) -> Desk:
        desk_enabled(settings)
        # The store is read in a worker thread, never on the event loop: on SQLite the
        # session's first query takes the write lock (BEGIN IMMEDIATE) and waits while another
        # request holds it, and that request needs the loop to finish: a page's charts,
        # fetched at once, each waited out the busy timeout and failed with 503.
        desk = await anyio.to_thread.run_sync(_signed_in, request, settings, session)
        if post:
            await require_csrf(request, desk.row)
        if not desk.role.allows(needed):
            raise Forbidden(f"Your role ({desk.role.value}) does not allow this.")
        return desk

    return check


async def require_csrf(request: Request, row: DeskSession | None) -> None:
    """403 unless the form (or the X-CSRF-Token header) carries the session's token."""
    token = request.headers.get("x-csrf-token")
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form(max_fields=MAX_FORM_FIELDS)
            value = form.get("csrf_token")
            token = value if isinstance(value, str) else None
    if row is None or not desk_sessions.csrf_ok(row, token):
        raise Forbidden("This form has expired or did not come from the desk; reload and retry.")


def safe_next(value: str | None) -> str:
    """``value`` if it is a path under /desk/ (no open redirect), else /desk/."""
    if (
        value
        and value.startswith("/desk/")
        and not value.startswith("//")
        and "\\" not in value
        and all(c.isprintable() for c in value)
    ):
        return value
    return "/desk/"


Viewer = Annotated[Desk, Depends(_needs(Role.VIEWER, post=False))]
Editor = Annotated[Desk, Depends(_needs(Role.EDITOR, post=False))]
Owner = Annotated[Desk, Depends(_needs(Role.OWNER, post=False))]
ViewerPost = Annotated[Desk, Depends(_needs(Role.VIEWER, post=True))]
EditorPost = Annotated[Desk, Depends(_needs(Role.EDITOR, post=True))]
OwnerPost = Annotated[Desk, Depends(_needs(Role.OWNER, post=True))]
