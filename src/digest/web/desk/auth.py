"""Signing in to the desk and out of it: ``/desk/login``, ``POST /desk/logout`` and
``POST /desk/logout-everywhere``.

The sign-in form carries a CSRF token before there is a session: an HMAC of a random cookie
set with the form, so a page elsewhere cannot post a sign-in (login CSRF). Attempts are
limited per address and per client; a wrong address and a wrong password get the same
answer in the same time. A successful sign-in always opens a new session (a session id
planted before sign-in is worthless) and ends the one the browser had.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from digest import audit, desk_accounts, desk_sessions
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import Forbidden
from digest.models import DeskUser
from digest.web.deps import SessionDep, SettingsDep
from digest.web.desk.guard import (
    COOKIE,
    ViewerPost,
    desk_enabled,
    request_ip,
    safe_next,
)
from digest.web.desk.limits import login_limits, too_many
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

LOGIN_COOKIE = "digest_desk_login"
WRONG = "That address and password do not match an account."
#: How long the second step of signing in (a code, or enrolling) may take.
PENDING_LIFETIME = timedelta(minutes=10)


def _login_token(settings: Settings, nonce: str) -> str:
    key = hashlib.sha256(b"desk-login\0" + settings.secret_key.encode()).digest()
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def _secure(settings: Settings) -> bool:
    return settings.base_url.lower().startswith("https://")


def set_session_cookie(response: Response, settings: Settings, cookie: str) -> None:
    """Hand the browser its session id: HttpOnly, SameSite=Lax, Secure on an https desk."""
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="lax", secure=_secure(settings), path="/desk"
    )


def begin(
    request: Request,
    settings: Settings,
    session: Session,
    user: DeskUser,
    *,
    pending: bool = False,
) -> desk_sessions.Opened:
    """A new session for ``user`` (the browser's old one, if any, ends): a full one, or, with
    ``pending``, one good only for the second step of signing in."""
    desk_sessions.close(session, request.cookies.get(COOKIE))
    lifetime = PENDING_LIFETIME if pending else timedelta(hours=settings.desk_session_hours)
    return desk_sessions.open_session(
        session,
        user,
        utcnow(),
        lifetime=lifetime,
        ip=request_ip(request, settings),
        user_agent=request.headers.get("user-agent"),
        pending_totp=pending,
    )


def signed_in(
    request: Request, settings: Settings, session: Session, user: DeskUser, next_path: str
) -> Response:
    """Open a full session for ``user``, record the sign-in, and go to ``next_path``."""
    opened = begin(request, settings, session, user)
    ip = request_ip(request, settings)
    audit.record(session, audit.Actor("desk", user.email, ip), "user.login", user.email)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(response, settings, opened.cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/desk")
    return response


def _form(
    request: Request,
    settings: Settings,
    *,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    next_path: str = "/desk/",
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    if len(nonce) != 43:
        nonce = secrets.token_urlsafe(32)
    response = desk_page(
        request,
        "login",
        None,
        status=status,
        title="Sign in",
        csrf_token=_login_token(settings, nonce),
        email=email,
        error=error,
        next_path=safe_next(next_path),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path="/desk",
    )
    return response


@router.get("/login")
async def login_form(request: Request, settings: SettingsDep, next: str = "/desk/") -> Response:
    """The sign-in form."""
    return _form(request, settings, next_path=next)


@router.post("/login")
def login(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/desk/",
) -> Response:
    """Check the address and password; on success a new session and the page asked for."""
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    expected = _login_token(settings, nonce) if nonce else ""
    # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a TypeError).
    if not nonce or not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        raise Forbidden("This form has expired or did not come from the desk; reload and retry.")
    ip = request_ip(request, settings)
    limits = login_limits(request, settings)
    # Counted before the (slow) check, so guesses sent at once are each counted.
    wait = limits.attempt(email, ip)
    if wait:
        message = too_many(wait)
        return _form(request, settings, email=email, error=message, status=429, next_path=next)
    user = desk_accounts.authenticate(session, email, password, utcnow())
    if user is None:
        return _form(request, settings, email=email, error=WRONG, status=401, next_path=next)
    limits.succeeded(email, ip)  # only failures count
    if user.totp_secret is None and not desk_accounts.policy(session).require_totp:
        return signed_in(request, settings, session, user, next)
    # The password was right; the second factor (or enrolling one) is still to come.
    opened = begin(request, settings, session, user, pending=True)
    step = "code" if user.totp_secret else "enrol"
    target = f"/desk/login/{step}?next=" + quote(safe_next(next), safe="/")
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, settings, opened.cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/desk")
    return response


@router.post("/logout")
def logout(request: Request, desk: ViewerPost, session: SessionDep) -> Response:
    """End this session and go back to the sign-in page."""
    desk_sessions.close(session, request.cookies.get(COOKIE))
    response = RedirectResponse("/desk/login", status_code=303)
    response.delete_cookie(COOKIE, path="/desk")
    return response


@router.post("/logout-everywhere")
def logout_everywhere(desk: ViewerPost, session: SessionDep) -> Response:
    """End every session of this account, this one included."""
    ended = desk_accounts.end_sessions(session, desk.user.id)
    audit.record(
        session,
        desk.actor,
        "user.logout_everywhere",
        desk.user.email,
        after={"sessions_ended": ended},
    )
    response = RedirectResponse("/desk/login", status_code=303)
    response.delete_cookie(COOKIE, path="/desk")
    return response
