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

import anyio.from_thread
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from digest import audit, desk_accounts, desk_sessions
from digest.clock import utcnow
from digest.config import Settings
from digest.errors import Forbidden
from digest.web.deps import SessionDep, SettingsDep
from digest.web.desk.guard import (
    COOKIE,
    ViewerPost,
    desk_enabled,
    request_ip,
    safe_next,
)
from digest.web.desk.render import desk_page
from digest.web.ratelimit import client_key, limiter_for

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

LOGIN_COOKIE = "digest_desk_login"
LOGIN_WINDOW_SECONDS = 15 * 60
WRONG = "That address and password do not match an account."
TOO_MANY = "Too many sign-in attempts. Wait {minutes} minutes, then try again."


def _login_token(settings: Settings, nonce: str) -> str:
    key = hashlib.sha256(b"desk-login\0" + settings.secret_key.encode()).digest()
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def _secure(settings: Settings) -> bool:
    return settings.base_url.lower().startswith("https://")


def _limiters(request: Request, settings: Settings):  # type: ignore[no-untyped-def]
    state = request.app.state
    if not hasattr(state, "desk_login_limits"):
        db = state.db
        limit = settings.desk_login_limit
        state.desk_login_limits = (
            limiter_for(db, limit, LOGIN_WINDOW_SECONDS, name="desk-login-account"),
            limiter_for(db, limit, LOGIN_WINDOW_SECONDS, name="desk-login-ip"),
        )
    return state.desk_login_limits


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
    if not nonce or not hmac.compare_digest(expected, csrf_token):
        raise Forbidden("This form has expired or did not come from the desk; reload and retry.")
    ip = request_ip(request, settings)
    by_account, by_ip = _limiters(request, settings)
    wait = anyio.from_thread.run(by_ip.check, client_key(ip)) or anyio.from_thread.run(
        by_account.check, email.strip().lower()[:320]
    )
    if wait:
        message = TOO_MANY.format(minutes=max(1, -(-wait // 60)))
        return _form(request, settings, email=email, error=message, status=429, next_path=next)
    now = utcnow()
    user = desk_accounts.authenticate(session, email, password, now)
    if user is None:
        return _form(request, settings, email=email, error=WRONG, status=401, next_path=next)
    desk_sessions.close(session, request.cookies.get(COOKIE))
    opened = desk_sessions.open_session(
        session,
        user,
        now,
        lifetime=timedelta(hours=settings.desk_session_hours),
        ip=ip,
        user_agent=request.headers.get("user-agent"),
    )
    audit.record(session, audit.Actor("desk", user.email, ip), "user.login", user.email)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        opened.cookie,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path="/desk",
    )
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
