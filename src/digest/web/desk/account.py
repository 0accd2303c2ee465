"""``/desk/account``: a person's own account, whatever their role: change the password,
set up or remove the second factor, see where they are signed in, log out everywhere.

A new password ends every session of the account (a thief's too) and opens a fresh one for
the browser that changed it. The key offered for a second factor is derived from this
session (see desk_totp.pending_secret) and saved only once a code from it is typed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from digest import desk_accounts, desk_sessions, desk_totp
from digest.clock import utcnow
from digest.errors import WeakPassword
from digest.passwords import check_password, verify_password
from digest.web.deps import SessionDep
from digest.web.desk.auth import begin, set_session_cookie
from digest.web.desk.guard import Desk, Viewer, ViewerPost, desk_enabled
from digest.web.desk.limits import login_limits, too_many
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

NOTICES = {
    "password": "Your password is changed. Every other session of this account has ended.",
    "totp-on": "Your second factor is set up: sign-in now asks for a code.",
    "totp-off": "Your second factor is removed.",
}
WRONG_PASSWORD = "That is not your current password."  # noqa: S105 (a message)


def _page(
    request: Request,
    desk: Desk,
    *,
    errors: dict[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    """The account page; ``errors`` by field name, shown beside the field."""
    user = desk.user
    secret = desk_totp.pending_secret(desk.settings.secret_key, desk.row.token_hash)
    issuer = f"{desk.settings.site_name} desk"
    return desk_page(
        request,
        "account",
        desk,
        status=status,
        title="Your account",
        notice=NOTICES.get(notice, ""),
        errors=errors or {},
        enrolled=user.totp_secret is not None,
        required=desk_accounts.policy(desk.session).require_totp,
        secret=secret,
        uri=desk_totp.provisioning_uri(secret, user.email, issuer),
        sessions=desk_sessions.of_user(desk.session, user.id),
        current_id=desk.row.id,
    )


def _current_password_wait(request: Request, desk: Desk) -> int | None:
    """Count a try of the current password in the account's sign-in count (before checking
    it, as a sign-in is): None when allowed, else seconds to wait, the password unchecked."""
    return login_limits(request, desk.settings).account_attempt(desk.user.email)


def _current_password_ok(request: Request, desk: Desk, password: str) -> bool:
    """Whether ``password`` is the account's; a right one is not counted as a failure."""
    if not verify_password(desk.user.password_hash, password):
        return False
    login_limits(request, desk.settings).account_succeeded(desk.user.email)
    return True


@router.get("/account")
def account(request: Request, desk: Viewer, notice: str = "") -> Response:
    """The person's own account."""
    return _page(request, desk, notice=notice)


@router.post("/account/password")
def change_password(
    request: Request,
    desk: ViewerPost,
    session: SessionDep,
    current: Annotated[str, Form(max_length=4096)] = "",
    new: Annotated[str, Form(max_length=4096)] = "",
    repeat: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """A new password (the current one first); the other sessions end."""
    wait = _current_password_wait(request, desk)
    if wait:
        return _page(request, desk, errors={"current": too_many(wait)}, status=429)
    errors: dict[str, str] = {}
    if not _current_password_ok(request, desk, current):
        errors["current"] = WRONG_PASSWORD
    try:
        check_password(new, desk.user.email)
    except WeakPassword as exc:
        errors["new"] = str(exc).capitalize() + "."
    if "new" not in errors and new != repeat:
        errors["repeat"] = "The two new passwords differ."
    if errors:
        return _page(request, desk, errors=errors, status=422)
    user = desk_accounts.set_password(session, desk.actor, desk.user.email, new)
    opened = begin(request, desk.settings, session, user)
    response = RedirectResponse("/desk/account?notice=password", status_code=303)
    set_session_cookie(response, desk.settings, opened.cookie)
    return response


@router.post("/account/totp")
def enrol_totp(
    request: Request,
    desk: ViewerPost,
    session: SessionDep,
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Save the offered key as this account's second factor, if ``code`` is one of its codes."""
    if desk.user.totp_secret is not None:
        return RedirectResponse("/desk/account", status_code=303)
    secret = desk_totp.pending_secret(desk.settings.secret_key, desk.row.token_hash)
    if not desk_totp.enrol(session, desk.actor, desk.user, secret, code, utcnow()):
        errors = {"code": "That code does not match the key: type the one your app shows now."}
        return _page(request, desk, errors=errors, status=422)
    return RedirectResponse("/desk/account?notice=totp-on", status_code=303)


@router.post("/account/totp/remove")
def remove_totp(
    request: Request,
    desk: ViewerPost,
    session: SessionDep,
    password: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Remove this account's second factor (the current password first)."""
    wait = _current_password_wait(request, desk)
    if wait:
        return _page(request, desk, errors={"remove": too_many(wait)}, status=429)
    if not _current_password_ok(request, desk, password):
        return _page(request, desk, errors={"remove": WRONG_PASSWORD}, status=422)
    if desk_accounts.policy(session).require_totp:
        message = "This desk requires a second factor of every account; it cannot be removed."
        return _page(request, desk, errors={"remove": message}, status=409)
    desk_totp.remove(session, desk.actor, desk.user)
    return RedirectResponse("/desk/account?notice=totp-off", status_code=303)
