"""The second step of signing in: ``/desk/login/code`` (a code from the person's
authenticator app) and ``/desk/login/enrol`` (setting one up, when an owner requires it).

After the right password the browser holds a *pending* session, which no desk page accepts
(see guard.py). The right code turns it into a new full session with a new id; wrong codes
count towards the same limits as wrong passwords.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlmodel import Session

from digest import desk_sessions, desk_totp
from digest.audit import Actor
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import Forbidden, SignInRequired
from digest.models import DeskSession, DeskUser
from digest.web.deps import SessionDep, SettingsDep
from digest.web.desk.auth import signed_in
from digest.web.desk.guard import COOKIE, desk_enabled, idle_limit, request_ip, safe_next
from digest.web.desk.limits import login_limits, too_many
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

WRONG_CODE = "That code is not right (or was used already). Type the current one."
EXPIRED = "This form has expired or did not come from the desk; reload and retry."


def _pending(
    request: Request, settings: Settings, session: Session
) -> tuple[DeskSession, DeskUser]:
    """The browser's half-signed-in session and its account; else back to the sign-in form."""
    found = desk_sessions.lookup(
        session, request.cookies.get(COOKIE), utcnow(), idle=idle_limit(settings)
    )
    if found is None or not found[0].pending_totp:
        raise SignInRequired("/desk/")
    return found


def _page(
    request: Request,
    settings: Settings,
    row: DeskSession,
    user: DeskUser,
    *,
    enrol: bool,
    next_path: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, object] = {}
    if enrol:
        secret = desk_totp.pending_secret(settings.secret_key, row.token_hash)
        context = {
            "secret": secret,
            "uri": desk_totp.provisioning_uri(secret, user.email, f"{settings.site_name} desk"),
        }
    return desk_page(
        request,
        "login_enrol" if enrol else "login_code",
        None,
        status=status,
        title="Set up a second factor" if enrol else "Your code",
        csrf_token=row.csrf_token,
        next_path=safe_next(next_path),
        error=error,
        **context,
    )


def _answer(
    request: Request, settings: Settings, session: Session, code: str, token: str, next_path: str
) -> Response:
    row, user = _pending(request, settings, session)
    if not desk_sessions.csrf_ok(row, token):
        raise Forbidden(EXPIRED)
    enrolling = user.totp_secret is None
    ip = request_ip(request, settings)
    limits = login_limits(request, settings)
    wait = limits.attempt(user.email, ip)  # counted before the check: see limits.py
    if wait:
        return _page(
            request, settings, row, user, enrol=enrolling, next_path=next_path,
            error=too_many(wait), status=429,
        )  # fmt: skip
    now = utcnow()
    if enrolling:
        secret = desk_totp.pending_secret(settings.secret_key, row.token_hash)
        ok = desk_totp.enrol(session, Actor("desk", user.email, ip), user, secret, code, now)
    else:
        ok = desk_totp.check(session, user, code, now)
    if not ok:
        return _page(
            request, settings, row, user, enrol=enrolling, next_path=next_path,
            error=WRONG_CODE, status=401,
        )  # fmt: skip
    limits.succeeded(user.email, ip)
    return signed_in(request, settings, session, user, next_path)


@router.get("/login/code")
def code_form(
    request: Request, settings: SettingsDep, session: SessionDep, next: str = "/desk/"
) -> Response:
    """Ask for the code of the person's authenticator app."""
    row, user = _pending(request, settings, session)
    if user.totp_secret is None:
        return _page(request, settings, row, user, enrol=True, next_path=next)
    return _page(request, settings, row, user, enrol=False, next_path=next)


@router.get("/login/enrol")
def enrol_form(
    request: Request, settings: SettingsDep, session: SessionDep, next: str = "/desk/"
) -> Response:
    """Show the key to add to an authenticator app, and ask for its first code."""
    row, user = _pending(request, settings, session)
    return _page(request, settings, row, user, enrol=user.totp_secret is None, next_path=next)


@router.post("/login/code")
@router.post("/login/enrol")
def code(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    code: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/desk/",
) -> Response:
    """Check the code (at enrolment, the first one, which saves the second factor); if right,
    a new full session and the page asked for."""
    return _answer(request, settings, session, code, csrf_token, next)
